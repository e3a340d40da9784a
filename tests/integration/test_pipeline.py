"""The pipeline end to end on a real store: keep raw, map, validate, link, upsert, outbox."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text

from adapters.sql import SqlAdapter
from hub.pipeline import Pipeline
from hub.settings import SourceSettings
from hub.status import hub_status
from hub.store.db import Store
from hub.store.tables import Entity, OutboxEvent, Quarantine
from hub.sync import sync_source
from tests.integration.small_legacy import MAPPING, make_legacy


def tiny_adapter(tmp_path: Path) -> SqlAdapter:
    mapping = tmp_path / "tiny.yaml"
    mapping.write_text(MAPPING)
    url = make_legacy(tmp_path / "legacy.db")
    return SqlAdapter("tiny", SourceSettings(adapter="adapters.sql:SqlAdapter", mapping=str(mapping),
                                              options={"url": url}, batch_size=3))


def test_sync_accepts_good_rows_quarantines_bad_and_links_verified_duplicates(store: Store, tmp_path: Path) -> None:
    adapter = tiny_adapter(tmp_path)
    result = sync_source(store, adapter, Pipeline(), batch_size=3)
    assert result.received == 11
    with store.session() as s:
        status = hub_status(s)
        reasons = {sid: r for sid, r in s.execute(select(Quarantine.source_id, Quarantine.reason))}
        persons = s.scalar(select(func.count()).select_from(Entity).where(Entity.entity_type == "Person"))
        episodes = s.scalar(select(func.count()).select_from(Entity).where(Entity.entity_type == "Episode"))
    src = status["sources"]["tiny"]
    assert src["raw"] == src["accepted"] + src["quarantined"] == 11
    assert reasons == {
        "4": "DATE_INVALID", "5": "NHS_NUMBER_CHECK_DIGIT", "6": "MISSING_FIELD", "7": "CODE_UNMAPPED",
        "11": "DATES_OUT_OF_ORDER", "12": "UNRESOLVED_REFERENCE",
    }
    # clients 1 and 3 share a verified NHS number: one golden person
    assert persons == 2
    assert episodes == 2
    assert status["canonical"] == {"Episode": 2, "Person": 2}


def test_second_sync_changes_nothing(store: Store, tmp_path: Path) -> None:
    adapter = tiny_adapter(tmp_path)
    sync_source(store, adapter, Pipeline(), batch_size=3)
    with store.session() as s:
        before_events = s.scalar(select(func.count()).select_from(OutboxEvent))
    with store.session() as s:
        s.execute(text("DELETE FROM cursors"))
    again = sync_source(store, adapter, Pipeline(), batch_size=3)
    assert again.accepted == 0 and again.quarantined == 0 and again.unchanged == 11
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == before_events


def test_golden_person_merges_both_sources_identifiers(store: Store, tmp_path: Path) -> None:
    adapter = tiny_adapter(tmp_path)
    sync_source(store, adapter, Pipeline(), batch_size=3)
    with store.session() as s:
        docs = [d for (d,) in s.execute(select(Entity.document).where(Entity.entity_type == "Person"))]
    ann = next(d for d in docs if '"943' in d)
    assert '"value":"1"' in ann and '"value":"3"' in ann
