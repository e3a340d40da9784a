"""Identity's in-memory blocking index during a sync (hub/identity/blocks.py), on SQLite and PostgreSQL.

A sync answers identity's candidate lookups from memory from its second batch on, and references
from the links of its earlier batches (``Pipeline.remembering``); the store it leaves must be
exactly the one the store's own lookups give, batch by batch. And both must notice when another
writer changes the persons under them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from adapters.simulators.legacy_escr import generate
from adapters.sql import SqlAdapter
from hub.contract import SourceRecord, StreamCursor
from hub.identity.blocks import PersonBlocks
from hub.identity.resolver import PersonResolver
from hub.pipeline import Pipeline
from hub.settings import SourceSettings
from hub.store.db import Store
from hub.store.merges import merge
from hub.store.migrate import upgrade
from hub.store.tables import Entity, PersonIndex, SourceLink
from hub.sync import sync_source
from tests.support.pipeline import store_state

BATCH = 60
DECISIONS = {
    "match_links": "SELECT person_a, person_b, score, decision, decided_by FROM match_links",
    "match_reviews": "SELECT person_a, person_b, score, status FROM match_reviews",
}


def _decisions(store: Store) -> dict[str, set[tuple[str, ...]]]:
    with store.engine.connect() as conn:
        return {name: {tuple(str(v) for v in row) for row in conn.execute(text(sql))}
                for name, sql in DECISIONS.items()}


def _ingest_batch_by_batch(store: Store, adapter: SqlAdapter) -> None:
    """The sync's batches, each through ``Pipeline.ingest`` with the store's own lookups (no index)."""
    pipeline = Pipeline()
    until = datetime.now(UTC)
    for spec in adapter.streams():
        records: list[SourceRecord] = list(adapter.pull(spec.name, StreamCursor(), until))
        for start in range(0, len(records), BATCH):
            batch = records[start:start + BATCH]
            with store.session() as session:
                pipeline.ingest(session, adapter.name, batch, adapter.map, cursors={spec.name: batch[-1].cursor})


def test_a_sync_with_the_index_decides_exactly_as_the_stores_lookups(store: Store, tmp_path: Path) -> None:
    legacy = f"sqlite:///{tmp_path / 'escr.db'}"
    generate(legacy, people=600, seed=5)
    settings = SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                              options={"url": legacy}, batch_size=BATCH)
    reference = Store(f"sqlite:///{tmp_path / 'reference.db'}")
    upgrade(reference.engine)
    _ingest_batch_by_batch(reference, SqlAdapter("legacy_escr", settings))

    adapter = SqlAdapter("legacy_escr", settings)
    resolver = PersonResolver()
    sync_source(store, adapter, Pipeline(resolver=resolver), batch_size=BATCH)

    decided = _decisions(store)
    assert decided == _decisions(reference)
    assert decided["match_links"] and decided["match_reviews"]  # the generated duplicates were found
    assert store_state(store) == store_state(reference)
    reference.dispose()
    adapter.close()


def test_the_index_sees_another_writers_merge_and_loads_again(store: Store, tmp_path: Path) -> None:
    legacy = f"sqlite:///{tmp_path / 'escr.db'}"
    generate(legacy, people=60, seed=3)
    adapter = SqlAdapter("legacy_escr", SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                                                       options={"url": legacy}, batch_size=500))
    sync_source(store, adapter, Pipeline(), batch_size=500)
    adapter.close()
    with store.session() as s:
        blocks = PersonBlocks.load(s)
        survivor, merged = s.scalars(select(PersonIndex.person_id).order_by(PersonIndex.person_id).limit(2)).all()
        birth = s.scalar(select(PersonIndex.birth_date).where(PersonIndex.person_id == merged))
    assert birth is not None
    key = {"birth_date": {birth.isoformat()}}
    assert merged in blocks.found(key, (), 1000)["birth_date"][birth.isoformat()]
    with store.session() as s:
        assert blocks.current(s)
    with store.session() as s:  # a reviewer merges two persons while the index is held
        merge(s, survivor, merged, "reviewer")
    with store.session() as s:
        assert not blocks.current(s)
        again = PersonBlocks.load(s)
        assert again.current(s)
    assert merged not in again.found(key, (), 1000)["birth_date"].get(birth.isoformat(), ())


def test_references_from_memory_follow_another_writers_merge(store: Store, tmp_path: Path) -> None:
    legacy = f"sqlite:///{tmp_path / 'escr.db'}"
    generate(legacy, people=60, seed=3)
    adapter = SqlAdapter("legacy_escr", SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                                                       options={"url": legacy}, batch_size=500))
    until = datetime.now(UTC)
    clients = list(adapter.pull("clients", StreamCursor(), until))
    referrals = list(adapter.pull("referrals", StreamCursor(), until))
    first, second = referrals[0], referrals[1]
    pipeline = Pipeline()
    with pipeline.remembering():
        with store.session() as s:
            pipeline.ingest(s, adapter.name, clients, adapter.map)
        with store.session() as s:  # answered from the links the clients' batch wrote
            pipeline.ingest(s, adapter.name, [first], adapter.map)
            person = s.scalar(select(Entity.person_id).where(Entity.id == _entity_of(s, "referrals", first)))
            survivor = s.scalar(select(SourceLink.entity_id).where(
                SourceLink.stream == "clients", SourceLink.entity_id != person).order_by(SourceLink.id).limit(1))
        assert person is not None and survivor is not None
        merged = _client_of(adapter, second)
        with store.session() as s:
            merged_id = s.scalar(select(SourceLink.entity_id).where(
                SourceLink.stream == "clients", SourceLink.source_id == merged))
        assert merged_id is not None and merged_id != survivor
        with store.session() as s:  # a reviewer merges the second referral's person away meanwhile
            merge(s, survivor, merged_id, "reviewer")
        with store.session() as s:
            pipeline.ingest(s, adapter.name, [second], adapter.map)
            assert s.scalar(select(Entity.person_id).where(Entity.id == _entity_of(s, "referrals", second))) == survivor
    adapter.close()


def _client_of(adapter: SqlAdapter, record: SourceRecord) -> str:
    return adapter.map(record).references["person_id"][1]


def _entity_of(session: Session, stream: str, record: SourceRecord) -> str | None:
    return session.scalar(select(SourceLink.entity_id).where(
        SourceLink.stream == stream, SourceLink.source_id == record.source_id))
