"""The pipeline end to end on a real store: keep raw, map, validate, link, upsert, outbox."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text

from adapters.sql import SqlAdapter
from hub.pipeline import Pipeline
from hub.settings import SourceSettings
from hub.status import hub_status
from hub.store.db import Store
from hub.store.tables import Cursor, Entity, OutboxEvent, Quarantine, RawRecord
from hub.sync import sync_source
from tests.support.pipeline import store_state, tiny_adapter


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


def test_raw_ids_are_right_when_the_store_hands_them_out_at_random(store: Store, tmp_path: Path) -> None:
    # With the largest possible id taken, SQLite gives new rows free ids at random (not one more than the
    # largest): links and quarantine entries must still point at their own raw records.
    with store.session() as s:
        s.add(RawRecord(id=2**63 - 1, source="other", stream="s", source_id="1", content_hash="h", payload="{}",
                        status="accepted"))
    sync_source(store, tiny_adapter(tmp_path), Pipeline(), batch_size=3)
    with store.session() as s:
        raw = {(stream, sid): rid for rid, stream, sid in s.execute(
            select(RawRecord.id, RawRecord.stream, RawRecord.source_id).where(RawRecord.source == "tiny"))}
        linked = {(stream, sid): rid for stream, sid, rid in s.execute(
            text("SELECT stream, source_id, raw_record_id FROM source_links"))}
        held = {(stream, sid): rid for stream, sid, rid in s.execute(
            select(Quarantine.stream, Quarantine.source_id, Quarantine.raw_record_id))}
    assert len(raw) == 11 and len(linked) + len(held) == 11
    assert linked == {key: raw[key] for key in linked} and held == {key: raw[key] for key in held}


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


def test_incremental_sync_reads_only_changed_rows_and_emits_updates(store: Store, tmp_path: Path) -> None:
    adapter = tiny_adapter(tmp_path)
    sync_source(store, adapter, Pipeline(), batch_size=3)
    with adapter.engine.begin() as conn:
        conn.execute(text("UPDATE CLIENT SET SURNAME = 'Hale-Brown', LAST_UPDATED = '2024-02-01 09:00:00' "
                          "WHERE CLIENT_ID = 2"))
    result = sync_source(store, adapter, Pipeline(), batch_size=3)
    assert result.received == 1 and result.accepted == 1 and result.updated == 1 and result.events == 1
    with store.session() as s:
        kinds = [k for (k,) in s.execute(select(OutboxEvent.kind).order_by(OutboxEvent.id))]
    assert kinds[-1] == "updated"


def test_quarantine_retry_after_fixes(store: Store, tmp_path: Path) -> None:
    from hub.quarantine import QuarantineFilter, retry

    adapter = tiny_adapter(tmp_path)
    sync_source(store, adapter, Pipeline(), batch_size=3)
    # the source corrects client 4's impossible birth date: the next sync accepts it
    with adapter.engine.begin() as conn:
        conn.execute(text("UPDATE CLIENT SET DOB = '28/02/2010', LAST_UPDATED = '2024-02-01 09:00:00' "
                          "WHERE CLIENT_ID = 4"))
    sync_source(store, adapter, Pipeline(), batch_size=3)
    with store.session() as s:
        states = {sid: st for sid, st in s.execute(select(Quarantine.source_id, Quarantine.status))}
    assert states["4"] == "superseded"
    # the episode that pointed at client 4 now resolves when retried, keeping its history
    result = retry(store, Pipeline(), lambda _name: adapter, flt=QuarantineFilter(reason="UNRESOLVED_REFERENCE"))
    assert result.accepted == 1
    with store.session() as s:
        entry = s.scalar(select(Quarantine).where(Quarantine.source_id == "12"))
        assert entry is not None and entry.status == "resolved"
        status = hub_status(s)["sources"]["tiny"]
    assert status["raw"] == status["accepted"] + status["quarantined"]
    # a retry that still fails keeps the entry open and counts the attempt
    again = retry(store, Pipeline(), lambda _name: adapter, flt=QuarantineFilter(reason="CODE_UNMAPPED"))
    assert again.quarantined == 1
    with store.session() as s:
        entry = s.scalar(select(Quarantine).where(Quarantine.source_id == "7"))
        assert entry is not None and entry.status == "open" and entry.attempts == 2 and len(entry.history) == 2


def test_read_ahead_sync_leaves_exactly_the_state_of_an_in_process_sync(store: Store, tmp_path: Path) -> None:
    from adapters.simulators.legacy_escr import generate
    from hub.store.migrate import upgrade

    legacy = f"sqlite:///{tmp_path / 'escr.db'}"
    summary = generate(legacy, people=400, seed=11)
    settings = SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                              options={"url": legacy}, batch_size=120)
    reference = Store(f"sqlite:///{tmp_path / 'reference.db'}")
    upgrade(reference.engine)
    in_process = sync_source(reference, SqlAdapter("legacy_escr", settings), Pipeline(), batch_size=120)
    adapter = SqlAdapter("legacy_escr", settings)
    assert adapter.can_read_ahead()
    seen: list[tuple[str, int]] = []
    ahead = sync_source(store, adapter, Pipeline(), batch_size=120, read_ahead=True,
                        progress=lambda stream, n: seen.append((stream, n)))
    assert ahead.as_dict() == in_process.as_dict()
    assert ahead.received == summary.total_rows and ahead.quarantined > 0
    assert all(n <= 120 for _, n in seen) and len(seen) >= summary.total_rows // 120
    assert store_state(store) == store_state(reference)
    # and a second read-ahead sync of the unchanged source changes nothing
    with store.session() as s:
        s.execute(text("DELETE FROM cursors"))
    again = sync_source(store, adapter, Pipeline(), batch_size=120, read_ahead=True)
    assert again.unchanged == summary.total_rows and again.accepted == again.quarantined == 0
    reference.dispose()
    adapter.close()


def test_read_ahead_raises_the_readers_error_and_leaves_no_reader(store: Store, tmp_path: Path) -> None:
    from hub.errors import ConfigError

    adapter = tiny_adapter(tmp_path)
    with adapter.engine.begin() as conn:
        conn.execute(text("DROP TABLE INVOLVEMENT"))
    try:
        sync_source(store, adapter, Pipeline(), batch_size=2, read_ahead=True)  # 4 batches before the failure
    except ConfigError as exc:
        assert "INVOLVEMENT" in str(exc)
    else:
        raise AssertionError("the missing table was not reported")
    with store.session() as s:  # the streams before the failure were kept, with their cursors
        assert s.scalar(select(func.count()).select_from(Entity).where(Entity.entity_type == "Person")) == 2
        # every record read before the failure, though SQLite holds batches for a later commit (hub.sync)
        kept = {stream: n for stream, n in s.execute(select(RawRecord.stream, func.count()).group_by(RawRecord.stream))}
        saved = set(s.scalars(select(Cursor.stream)))
    assert kept == {"clients": 7} and saved == set(kept)
    import multiprocessing
    assert multiprocessing.active_children() == []
