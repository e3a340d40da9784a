"""The adapter conformance suite: every registered source and target fixture (adapters/testing.py) runs it.

Sources: a pull resumes from its cursor, a repeated pull changes nothing, a change is read once,
a bad record is quarantined with its reason, a transient failure is retried with nothing lost and a
permanent one fails the run for good. Targets: a push is idempotent, a transient failure is retried by
delivery, a permanent refusal becomes a dead letter with the target's reason. Each runs on SQLite, and on
PostgreSQL when CAREHUB_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import delete, func, insert, select

from adapters.testing import SourceCase, TargetCase, load_fixtures
from hub.contract import ChangeEvent
from hub.delivery.config import DeliveryConfig
from hub.delivery.fanout import hold_outbox_order
from hub.delivery.worker import DeliveryLoop, ensure_circuits
from hub.errors import HubError, RetryableError
from hub.pipeline import Pipeline, event_id_for
from hub.registry import load_target
from hub.status import delivery_status
from hub.store.db import Store
from hub.store.delivery import Delivery
from hub.store.tables import Cursor, Entity, OutboxEvent, Quarantine, SyncRun, utcnow
from hub.sync import sync_source
from tests.support.delivery import drain, hub_settings

SOURCES, TARGETS = load_fixtures()


@pytest.fixture(params=sorted(SOURCES))
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SourceCase]:
    with SOURCES[request.param](tmp_path) as case:
        yield case


@pytest.fixture(params=sorted(TARGETS))
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetCase]:
    with TARGETS[request.param](tmp_path) as case:
        yield case


def test_the_project_s_adapters_are_registered() -> None:
    assert {"sql", "rest-page", "rest-offset", "rest-cursor", "rest-next_link", "fhir"} <= SOURCES.keys()
    assert {"rest", "fhir"} <= TARGETS.keys()


def sync(store: Store, case: SourceCase, fresh: bool = False):  # type: ignore[no-untyped-def]
    adapter = case.make_adapter() if fresh and case.make_adapter else case.adapter
    return sync_source(store, adapter, Pipeline(), batch_size=4)


def persons(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(Entity).where(Entity.entity_type == "Person")) or 0)


def test_a_pull_resumes_from_its_cursor(store: Store, source: SourceCase) -> None:
    first = sync(store, source)
    assert first.received == source.initial and first.created == source.initial
    stream, key = source.add()
    second = sync(store, source)
    assert (second.received, second.created) == (1, 1)
    with store.session() as s:
        cursors = {c.stream: c.value for c in s.scalars(select(Cursor))}
    assert cursors[stream]["key"] == key


def test_a_read_ahead_pull_resumes_like_one_in_process(store: Store, source: SourceCase) -> None:
    """An adapter that can be read by a forked reader (``carehub sync``) gives the same outcome there."""
    can = getattr(source.adapter, "can_read_ahead", None)
    if can is None or not can():
        pytest.skip("this adapter is read in process only")
    first = sync_source(store, source.adapter, Pipeline(), batch_size=4, read_ahead=True)
    assert first.received == source.initial and first.created == source.initial
    stream, key = source.add()
    second = sync_source(store, source.adapter, Pipeline(), batch_size=4, read_ahead=True)
    assert (second.received, second.created) == (1, 1)
    with store.session() as s:
        cursors = {c.stream: c.value for c in s.scalars(select(Cursor))}
    assert cursors[stream]["key"] == key


def test_a_repeated_pull_changes_nothing(store: Store, source: SourceCase) -> None:
    sync(store, source)
    with store.session() as s:
        events = s.scalar(select(func.count()).select_from(OutboxEvent))
        s.execute(delete(Cursor))  # read everything again from the start
    again = sync(store, source, fresh=True)
    assert again.received == source.initial
    assert (again.unchanged, again.created, again.updated, again.events) == (source.initial, 0, 0, 0)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == events


def test_a_change_is_read_once(store: Store, source: SourceCase) -> None:
    sync(store, source)
    source.change()
    changed = sync(store, source)
    assert (changed.received, changed.updated, changed.events) == (1, 1, 1)
    assert sync(store, source).received == 0


def test_a_bad_record_is_quarantined_with_its_reason_and_the_batch_goes_on(store: Store, source: SourceCase) -> None:
    stream, key, reason = source.add_bad()
    source.add()
    result = sync(store, source)
    assert result.quarantined == 1 and result.created == source.initial + 1
    with store.session() as s:
        parked = s.scalars(select(Quarantine)).all()
    assert [(q.stream, q.source_id, q.reason) for q in parked] == [(stream, key, reason)]
    assert parked[0].message


def test_a_transient_failure_is_retried_and_nothing_is_lost(store: Store, source: SourceCase) -> None:
    sync(store, source)
    source.add()
    source.fail_transiently(2)
    if source.retries_in_place:
        result = sync(store, source)
    else:
        with pytest.raises(RetryableError):
            sync(store, source)
        source.heal()
        result = sync(store, source)
    assert (result.received, result.created) == (1, 1)
    assert persons(store) == source.initial + 1


def test_a_permanent_failure_fails_the_run_for_good(store: Store, source: SourceCase) -> None:
    assert source.fail_permanently is not None
    source.fail_permanently()
    with pytest.raises(HubError) as failure:
        sync(store, source, fresh=True)
    assert not isinstance(failure.value, RetryableError)
    with store.session() as s:
        run = s.scalars(select(SyncRun)).one()
        assert run.outcome == "failed" and run.error
        assert s.scalar(select(func.count()).select_from(Cursor)) == 0


# -- targets ---------------------------------------------------------------------------------------

def events(case: TargetCase, n: int) -> list[ChangeEvent]:
    made = []
    for k in range(n):
        entity_type, payload = case.event(k)
        entity_id, person = str(uuid.uuid4()), str(uuid.uuid4())
        made.append(ChangeEvent(event_id=event_id_for(entity_id, 1, "created"), entity_type=entity_type,
                                entity_id=entity_id, person_id=person, kind="created", version=1,
                                payload={"id": entity_id, "person_id": person, **payload}, created_at=utcnow(),
                                source="conformance", ordering_key=person))
    return made


def to_outbox(store: Store, batch: list[ChangeEvent]) -> None:
    with store.session() as s:
        hold_outbox_order(s)
        s.execute(insert(OutboxEvent), [{
            "event_id": e.event_id, "entity_type": e.entity_type, "entity_id": e.entity_id, "person_id": e.person_id,
            "kind": e.kind, "version": e.version, "ordering_key": e.ordering_key, "source": e.source,
            "payload": orjson.dumps(e.payload).decode(), "created_at": e.created_at, "status": "pending"}
            for e in batch])


def delivery(store: Store, case: TargetCase) -> DeliveryLoop:
    settings = case.settings.model_copy(update={
        "retry": case.settings.retry.model_copy(update={"max_attempts": 5, "base_seconds": 0.01,
                                                        "max_seconds": 0.05}),
        "circuit": case.settings.circuit.model_copy(update={"failure_threshold": 100})})
    config = DeliveryConfig(targets={"conformance": settings}, subscriptions=[{"target": "conformance"}])
    ensure_circuits(store, ["conformance"])
    return DeliveryLoop(store, hub_settings(store.url), config, "conformance-worker", threading.Event())



def delivered(store: Store, status: str) -> int:
    with store.session() as s:
        return int(delivery_status(s).get("conformance", {}).get(status, 0))


def test_a_push_is_idempotent(store: Store, target: TargetCase) -> None:
    adapter = load_target(hub_settings(store.url), DeliveryConfig(targets={"conformance": target.settings}),
                          "conformance")
    batch = events(target, 3)
    try:
        first, again = adapter.push(batch), adapter.push(batch)
    finally:
        adapter.close()
    assert all(r.accepted for r in first) and all(r.accepted for r in again)
    assert target.held() == 3


def test_a_transient_push_failure_is_retried_by_delivery(store: Store, target: TargetCase) -> None:
    to_outbox(store, events(target, 3))
    target.fail_transiently(1)
    loop = delivery(store, target)
    try:
        drain(loop, lambda: delivered(store, "delivered") == 3, timeout=30)
    finally:
        loop.close()
    assert target.held() == 3


def test_a_permanent_refusal_is_a_dead_letter_with_the_reason(store: Store, target: TargetCase) -> None:
    to_outbox(store, events(target, 1))
    target.refuse_next()
    loop = delivery(store, target)
    try:
        drain(loop, lambda: delivered(store, "dead") == 1, timeout=30)
    finally:
        loop.close()
    with store.session() as s:
        dead = s.scalars(select(Delivery)).one()
    assert dead.error_class == "PermanentDeliveryError" and target.refusal in (dead.last_error or "")
    assert target.held() == 0
