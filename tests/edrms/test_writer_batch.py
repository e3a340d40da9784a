"""write_canonical_batch gives what write_canonical gives, record for record (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy import select, text

from hub.model import DocumentLink, Person
from hub.store.db import Store
from hub.store.tables import Entity, OutboxEvent, PersonIndex, RawRecord, SourceLink
from hub.store.writer import Provenance, write_canonical, write_canonical_batch

AT = datetime(2026, 1, 1, tzinfo=UTC)


def snapshot(store: Store) -> dict[str, list]:
    """Every row the writers touch, without surrogate ids and times."""
    with store.session() as s:
        return {
            "entities": sorted(s.execute(select(Entity.id, Entity.entity_type, Entity.person_id, Entity.version,
                                                Entity.content_hash, Entity.document)).all()),
            "links": sorted(s.execute(select(SourceLink.source, SourceLink.stream, SourceLink.source_id,
                                             SourceLink.entity_id, SourceLink.content_hash, SourceLink.version)).all()),
            "raw": sorted(s.execute(select(RawRecord.source, RawRecord.source_id, RawRecord.content_hash)).all()),
            "events": sorted(s.execute(select(OutboxEvent.event_id, OutboxEvent.entity_id, OutboxEvent.kind,
                                              OutboxEvent.version, OutboxEvent.payload)).all()),
            "index": sorted(s.execute(select(PersonIndex.person_id, PersonIndex.family_name)).all()),
        }


def records(round_: int) -> list[tuple]:
    """A person from two sources (survivorship folds them) and documents that change between rounds."""
    people = [(Person(names=[{"given": ["Ann"], "family": "Hale" if round_ < 2 else "Hale-Price"}],
                      birth_date="1950-02-01", sex="female"), Provenance("escr", "people", "P1")),
              (Person(names=[{"given": ["Ann"], "family": "Hale"}], birth_date="1950-02-01", sex="female",
                      id="3f5c8a2e-0000-5000-8000-000000000001"), Provenance("adults", "people", "A1"))]
    docs = [(DocumentLink(person_id="p-1", document_id=f"d{n}", title=f"Letter {n}",
                          record_class="adults" if round_ == 0 or n % 2 else "childrens"),
             Provenance("edrms", "documents", f"edrms:d{n}")) for n in range(5)]
    return people + docs


def test_a_batch_writes_what_one_by_one_writes(store: Store, database_url: str) -> None:
    other = Store(database_url)  # the same store again, emptied between the two ways
    one_by_one: list[dict] = []
    for round_ in range(3):
        with store.session() as s:
            outcomes = [write_canonical(s, m, p, at=AT) for m, p in records(round_)]
            s.commit()
        one_by_one.append(snapshot(store) | {"outcomes": [(o.kind, o.entity_id, o.version) for o in outcomes]})
    with store.session() as s:
        for table in ("outbox", "person_identifiers", "person_index", "source_links", "raw_records", "entities"):
            s.execute(text(f"DELETE FROM {table}"))
        s.commit()
    for round_ in range(3):
        with other.session() as s:
            outcomes = write_canonical_batch(s, records(round_), at=AT)
            s.commit()
        got = snapshot(other) | {"outcomes": [(o.kind, o.entity_id, o.version) for o in outcomes]}
        assert got == one_by_one[round_], round_
    assert [k for k, *_ in one_by_one[1]["outcomes"]].count("unchanged") == 4
    assert orjson.loads(one_by_one[2]["events"][-1][4])  # events carry their documents
    other.dispose()
