"""Delivery on a real store (SQLite, and PostgreSQL when configured) to the counting target over loopback HTTP.

The happy path moves lane cursors and writes no row per event; whatever does not go (a failure, a dead
letter, an event held behind one) becomes a delivery row, and the row machinery takes it from there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from adapters.simulators.counting_target import CountingTarget
from hub.delivery.config import DeliveryConfig, RetryPolicy
from hub.delivery.lanes import SessionRunner, lease_lane, read_lane, wanted
from hub.delivery.operations import (
    DeliveryFilter,
    cancel_delivery,
    event_deliveries,
    list_deliveries,
    retry_deliveries,
    retry_delivery,
    show_delivery,
)
from hub.delivery.queue import Outcome, backoff_seconds, claim, record_outcomes, requeue_lost
from hub.delivery.worker import DeliveryLoop, ensure_circuits
from hub.errors import Conflict
from hub.status import hub_status
from hub.store.db import Store
from hub.store.delivery import CircuitState, Delivery, DeliveryCursor, DeliveryHistory
from hub.store.migrate import upgrade
from hub.store.tables import OUTBOX_LANES, OutboxEvent, lane_of, utcnow
from tests.support.clock import SteppedClock
from tests.support.delivery import (
    add_events,
    assert_each_once_in_order,
    count,
    delivery_config,
    drain,
    hub_settings,
    person_id,
)
from tests.support.waiting import wait_for


@pytest.fixture
def target() -> Iterator[CountingTarget]:
    sim = CountingTarget().start()
    yield sim
    sim.stop()


_LOOPS: list[DeliveryLoop] = []


@pytest.fixture(autouse=True)
def close_loops() -> Iterator[None]:
    """Close the loops a test made (each holds its own connections on PostgreSQL)."""
    yield
    while _LOOPS:
        _LOOPS.pop().close()


def make_loop(store: Store, config: DeliveryConfig, clock: SteppedClock | None = None) -> DeliveryLoop:
    ensure_circuits(store, config.enabled_targets())
    loop = DeliveryLoop(store, hub_settings(store.url), config, "test-worker", threading.Event(),
                        clock=clock or SteppedClock())
    _LOOPS.append(loop)
    return loop



def due_now(store: Store) -> None:
    """Make every failed row due at once (its backoff is long, so the loop leaves it to the test)."""
    with store.session() as s:
        s.execute(update(Delivery).where(Delivery.status == "failed").values(next_attempt_at=utcnow()))


def key_of(store: Store, person: int, version: int) -> int:
    with store.session() as s:
        return int(s.scalar(select(Delivery.id).join(OutboxEvent, OutboxEvent.id == Delivery.outbox_id).where(
            OutboxEvent.entity_id == person_id(person), OutboxEvent.version == version,
            Delivery.replay_of.is_(None))))


def test_lanes_deliver_each_target_what_it_subscribes_to_and_nothing_twice(store: Store) -> None:
    add_events(store, 10, 3)
    config = DeliveryConfig.model_validate({
        "targets": {"a": {"adapter": "adapters.noop_target:NoopTarget", "batch_size": 7},
                    "b": {"adapter": "adapters.noop_target:NoopTarget", "ordering": "entity"},
                    "off": {"adapter": "adapters.noop_target:NoopTarget", "enabled": False}},
        "subscriptions": [{"target": "a"}, {"target": "b", "entity_types": ["Person"], "kinds": ["updated"]},
                          {"target": "off"}],
    })
    with store.session() as s:
        lanes = s.execute(select(OutboxEvent.ordering_key, OutboxEvent.lane)).all()
    assert all(lane == lane_of(key) for key, lane in lanes)  # set at insert from the ordering key
    loop = make_loop(store, config)
    drain(loop, lambda: count(store, "delivered") == 50)
    for _ in range(3):
        assert loop.run_once() == 0  # every cursor is at the end of its lane: nothing is read again
    with store.session() as s:
        status = hub_status(s)
        cursors = s.execute(select(DeliveryCursor.target, func.count()).group_by(DeliveryCursor.target)).all()
        assert not s.scalars(select(Delivery.id)).all()  # the happy path writes no delivery row
        created = s.scalar(select(OutboxEvent.event_id).where(OutboxEvent.kind == "created").limit(1))
        updated = s.scalar(select(OutboxEvent.event_id).where(OutboxEvent.kind == "updated").limit(1))
        assert created and updated
        seen_created = event_deliveries(s, created, config)
        seen_updated = event_deliveries(s, updated, config)
    assert status["deliveries"]["a"]["delivered"] == 30
    assert status["deliveries"]["b"]["delivered"] == 20  # only the updates
    assert "off" not in status["deliveries"]
    assert sorted(cursors) == [("a", OUTBOX_LANES), ("b", OUTBOX_LANES)]
    assert status["outbox"] == {"pending": 0, "delivered": 30, "dead": 0}
    assert {t: v["status"] for t, v in seen_created["targets"].items()} == {"a": "delivered"}
    assert {t: v["status"] for t, v in seen_updated["targets"].items()} == {"a": "delivered", "b": "delivered"}


def test_subscriptions_reach_the_lane_read_as_bound_values_never_as_sql_text(store: Store) -> None:
    add_events(store, 4, 2)
    odd = ["Person' OR 'x' = 'x", "Person); DELETE FROM outbox; --"]
    config = DeliveryConfig.model_validate({
        "targets": {name: {"adapter": "adapters.noop_target:NoopTarget"} for name in ("a", "b")},
        "subscriptions": [{"target": "a", "entity_types": ["Person"], "kinds": ["updated", "it's"]},
                          {"target": "b", "entity_types": odd}]})
    condition, params = wanted(config, "b")
    assert not any(value in condition for value in odd) and sorted(params.values()) == sorted(odd)
    loop = make_loop(store, config)
    while loop.run_once():
        pass
    with store.session() as s:
        status = hub_status(s)
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 8
    assert status["deliveries"]["a"]["delivered"] == 4  # the updates only
    assert status["deliveries"]["b"]["delivered"] == 0  # no entity type is called that


def test_a_push_carries_one_event_per_person_and_lanes_keep_order(store: Store) -> None:
    add_events(store, 3, 4)
    config = DeliveryConfig.model_validate({"targets": {"a": {"adapter": "adapters.noop_target:NoopTarget"}},
                                            "subscriptions": [{"target": "a"}]})
    make_loop(store, config)
    is_pg = store.engine.dialect.name == "postgresql"
    seen: list[int] = []
    while True:
        with store.session() as s:
            leased = lease_lane(SessionRunner(s), "a", "test:1/0", 60, postgres=is_pg)
        if leased is None:
            break
        with store.session() as s:
            batch = read_lane(SessionRunner(s), config, "a", *leased, limit=100)
            keys = [le.event.ordering_key for le in batch.events]
            assert len(keys) == len(set(keys)), keys  # the batch ends before a person's second event
            s.execute(update(DeliveryCursor).where(DeliveryCursor.target == "a", DeliveryCursor.lane == batch.lane)
                      .values(position=batch.upto, holder=None, claim_id=None, lease_until=None))
        seen.extend(le.event.sequence or 0 for le in batch.events)
    assert sorted(seen) == list(range(1, 13)) and len(seen) == 12


def test_a_lane_whose_holder_vanished_is_taken_over_after_its_lease(store: Store, target: CountingTarget) -> None:
    n = add_events(store, 4, 2)
    config = delivery_config(target.url)
    loop = make_loop(store, config)
    with store.session() as s:  # a worker leases a lane and dies before it reports back
        leased = lease_lane(SessionRunner(s), "counting", "gone:1/0", 60,
                            postgres=store.engine.dialect.name == "postgresql")
        assert leased is not None
        s.execute(update(DeliveryCursor).where(DeliveryCursor.lane == leased[0])
                  .values(lease_until=utcnow() - timedelta(seconds=1)))
    drain(loop, lambda: count(store, "delivered") == n)
    assert_each_once_in_order(target, n)
    with store.session() as s:
        lost = s.execute(select(DeliveryCursor.times_lost, DeliveryCursor.lost_by)
                         .where(DeliveryCursor.lane == leased[0])).one()
        status = hub_status(s)
    assert tuple(lost) == (1, "gone:1/0")
    assert status["deliveries"]["counting"]["lanes_lost"] == 1


def test_every_event_once_and_in_order_per_person(store: Store, target: CountingTarget) -> None:
    n = add_events(store, 40, 6)
    loop = make_loop(store, delivery_config(target.url, batch_size=25))
    drain(loop, lambda: count(store, "delivered") == n)
    assert_each_once_in_order(target, n)
    assert target.stats()["duplicates"] == 0
    with store.session() as s:
        status = hub_status(s)
    assert status["outbox"]["delivered"] == n
    assert status["deliveries"]["counting"]["delivered"] == n
    assert status["deliveries"]["counting"]["circuit"] == "closed"


def test_permanent_failure_is_a_dead_letter_that_blocks_its_person_until_replayed(
    store: Store, target: CountingTarget
) -> None:
    n = add_events(store, 5, 3)
    refused = f"{person_id(2)}:2"
    target.fail_keys([refused], "unknown care package code SVC-77")
    loop = make_loop(store, delivery_config(target.url))
    # everything but person 2's versions 2 and 3 goes; version 3 waits behind the dead letter
    drain(loop, lambda: count(store, "delivered") == n - 2)
    dead = key_of(store, 2, 2)
    for _ in range(5):
        loop.run_once()
    assert count(store, "delivered") == n - 2
    with store.session() as s:
        d = s.get(Delivery, dead)
        assert d is not None and d.status == "dead"
        assert d.error_class == "PermanentDeliveryError" and "SVC-77" in (d.last_error or "")
        assert s.get(Delivery, key_of(store, 2, 3)).status == "pending"  # type: ignore[union-attr]
        assert hub_status(s)["outbox"] == {"pending": 1, "delivered": n - 2, "dead": 1}

    target.heal()
    with store.session() as s:
        replay = retry_delivery(s, dead, "user-17")
    assert replay["replay_of"] == dead and replay["status"] == "pending"
    drain(loop, lambda: count(store, "delivered") == n)
    assert_each_once_in_order(target, n)
    with store.session() as s:
        shown = show_delivery(s, dead)
        again = show_delivery(s, replay["id"])
    assert shown["replayed_by"] == replay["id"] and shown["status"] == "dead"
    assert [g["status"] for g in shown["generations"]] == ["dead", "delivered"]
    assert {"action": "replay", "actor": "user-17"}.items() <= shown["history"][-1].items()
    assert again["history"][0]["actor"] == "user-17" and again["history"][-1]["outcome"] == "delivered"
    with store.session() as s, pytest.raises(Conflict):
        retry_delivery(s, dead, "user-17")


def test_cancel_really_stops_the_retries_and_frees_the_person(store: Store, target: CountingTarget) -> None:
    add_events(store, 1, 2)
    target.fail_transiently(3600)
    config = delivery_config(target.url, retry={"base_seconds": 0.01, "max_seconds": 0.02},
                             circuit={"failure_threshold": 1000})
    loop = make_loop(store, config)
    wait_for(lambda: loop.run_once() >= 0 and count(store, "failed") == 1, "a failed attempt", timeout=10)
    first = key_of(store, 0, 1)
    with store.session() as s:
        cancelled = cancel_delivery(s, first, "user-3", "duplicate record, merged by hand")
    assert cancelled["status"] == "cancelled"
    with store.session() as s:
        attempts_then = s.get(Delivery, first).attempts  # type: ignore[union-attr]
    target.heal()
    drain(loop, lambda: count(store, "delivered") == 1)
    for _ in range(5):
        loop.run_once()
    with store.session() as s:
        row = s.get(Delivery, first)
        assert row is not None and row.status == "cancelled" and row.attempts == attempts_then
        history = s.scalars(select(DeliveryHistory).where(DeliveryHistory.delivery_id == first)
                            .order_by(DeliveryHistory.id)).all()
    assert history[-1].action == "cancel" and history[-1].actor == "user-3"
    assert target.stats()["applied"] == 1  # version 2 went; version 1 never did
    with store.session() as s, pytest.raises(Conflict):
        cancel_delivery(s, first, "user-3")


def test_exhausted_retries_become_a_dead_letter(store: Store, target: CountingTarget) -> None:
    add_events(store, 1, 1)
    target.fail_transiently(3600, status=429)
    loop = make_loop(store, delivery_config(target.url, retry={"max_attempts": 3, "base_seconds": 0.01},
                                            circuit={"failure_threshold": 1000}))
    drain(loop, lambda: count(store, "dead") == 1)
    with store.session() as s:
        d = s.scalars(select(Delivery)).one()
    assert d.attempts == 3 and d.error_class == "RetryableError"
    assert "retries exhausted after 3 attempts" in (d.last_error or "")


def test_target_down_for_a_while_events_wait_circuit_opens_and_closes(store: Store, target: CountingTarget) -> None:
    n = add_events(store, 30, 2)
    target.down()
    clock = SteppedClock()
    loop = make_loop(store, delivery_config(target.url, batch_size=10,
                                            circuit={"failure_threshold": 3, "cooldown_seconds": 30}), clock)
    wait_for(lambda: loop.run_once() >= 0 and _circuit(store).state == "open", "the circuit to open", timeout=20)
    assert count(store, "delivered") == 0 and count(store, "dead") == 0
    # open: nobody calls the target, so no attempts are spent while it is down
    with store.session() as s:
        attempts = sum(s.scalars(select(Delivery.attempts)))
    for _ in range(5):
        loop.run_once()
    with store.session() as s:
        assert sum(s.scalars(select(Delivery.attempts))) == attempts
    clock.advance(31)  # the cool-down passes
    loop.run_once()  # the half-open probe fails: open again
    assert _circuit(store).state == "open" and _circuit(store).times_opened >= 2
    target.up()
    clock.advance(31)
    drain(loop, lambda: count(store, "delivered") == n)
    assert _circuit(store).state == "closed"
    assert_each_once_in_order(target, n)


def _circuit(store: Store) -> CircuitState:
    with store.session() as s:
        row = s.get(CircuitState, "counting")
        assert row is not None
        return row


def test_lost_claims_come_back_after_their_lease(store: Store, target: CountingTarget) -> None:
    n = add_events(store, 3, 1)
    config = delivery_config(target.url, retry={"base_seconds": 600, "max_seconds": 600, "jitter": "none"},
                             circuit={"failure_threshold": 1000})
    target.fail_transiently(3600)
    loop = make_loop(store, config)
    wait_for(lambda: loop.run_once() >= 0 and count(store, "failed") == n, "failed rows", timeout=10)
    target.heal()
    due_now(store)
    with store.session() as s:  # a worker claims the rows for their retry and dies
        assert len(claim(s, "counting", 10, "gone:1/0", 60)) == n
    with store.session() as s:
        s.execute(update(Delivery).values(lease_until=utcnow() - timedelta(seconds=1)))
        assert requeue_lost(s, {"counting": RetryPolicy()}, RetryPolicy()) == 3
    drain(loop, lambda: count(store, "delivered") == n)
    with store.session() as s:
        actions = s.scalars(select(DeliveryHistory.error_class).where(DeliveryHistory.action == "requeue")).all()
    assert actions == ["WorkerLost"] * 3


def test_bulk_retry_by_target_and_since_replays_dead_letters(store: Store, target: CountingTarget) -> None:
    n = add_events(store, 4, 1)
    target.fail_keys([f"{person_id(p)}:1" for p in range(4)], "endpoint misconfigured")
    loop = make_loop(store, delivery_config(target.url))
    drain(loop, lambda: count(store, "dead") == n)
    target.heal()
    with store.session() as s:
        dead = list_deliveries(s, DeliveryFilter(status="dead", target="counting"))
        ids = retry_deliveries(s, "user-9", target="counting", since=utcnow() - timedelta(hours=1))
    assert len(dead) == n and len(ids) == n
    drain(loop, lambda: count(store, "delivered") == n)
    assert_each_once_in_order(target, n)


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(base_seconds=1, max_seconds=30, jitter="none")
    assert [backoff_seconds(policy, a) for a in (1, 2, 3, 6, 9)] == [1, 2, 4, 30, 30]
    jittered = RetryPolicy(base_seconds=1, max_seconds=30)
    assert all(0 <= backoff_seconds(jittered, 4) <= 8 for _ in range(50))


def test_attempts_are_on_the_row_when_delivered_and_in_the_history_otherwise(
    store: Store, target: CountingTarget
) -> None:
    add_events(store, 3, 1)
    config = delivery_config(target.url, retry={"base_seconds": 600, "max_seconds": 600, "jitter": "none"},
                             circuit={"failure_threshold": 1000})
    target.fail_transiently(3600)
    loop = make_loop(store, config)
    wait_for(lambda: loop.run_once() >= 0 and count(store, "failed") == 3, "three failed first attempts", timeout=10)
    due_now(store)
    with store.session() as s:
        claimed = claim(s, "counting", 10, "node:1/0", 60)
    assert sorted(c.event.sequence for c in claimed) == [1, 2, 3] and {c.attempt for c in claimed} == {2}
    ok, failed, lost = sorted(claimed, key=lambda c: c.event.sequence or 0)
    with store.session() as s:  # meanwhile the third claim was given up and taken by another worker
        s.execute(update(Delivery).where(Delivery.id == lost.delivery_id).values(claim_id="another-claim"))
    outcomes = [Outcome(ok.delivery_id, "delivered", receipt="r-1"),
                Outcome(failed.delivery_id, "transient", error_class="RetryableError", error="HTTP 503"),
                Outcome(lost.delivery_id, "delivered", receipt="r-3")]
    with store.session() as s:
        counts = record_outcomes(s, claimed, outcomes, RetryPolicy(), "node:1/0", 7)
    assert counts == {"delivered": 2, "failed": 1, "dead": 0}
    with store.session() as s:
        first = {h.delivery_id: h for h in s.scalars(select(DeliveryHistory).where(DeliveryHistory.attempt == 1))}
        history = {h.delivery_id: h for h in s.scalars(select(DeliveryHistory).where(DeliveryHistory.attempt == 2))}
        rows = {d.id: d for d in s.scalars(select(Delivery))}
        shown = show_delivery(s, ok.delivery_id)
        shown_failed = show_delivery(s, failed.delivery_id)
    # each first attempt (pushed from the lane, refused) has its history row, with the worker that made it
    assert len(first) == 3 and {h.outcome for h in first.values()} == {"failed"}
    assert {h.worker for h in first.values()} == {"test-worker"}
    # the settled success writes no history row: the row itself says who delivered it, when, with what receipt
    assert set(history) == {failed.delivery_id, lost.delivery_id}
    assert rows[ok.delivery_id].status == "delivered" and rows[ok.delivery_id].receipt == "r-1"
    assert [(h["action"], h["outcome"], h["attempt"], h["worker"], h["receipt"]) for h in shown["history"]] == [
        ("attempt", "failed", 1, "test-worker", None), ("attempt", "delivered", 2, "node:1/0", "r-1")]
    assert shown["history"][-1]["at"] == shown["delivered_at"]
    # a failed attempt, and an attempt whose claim was lost, keep their history rows
    assert (history[failed.delivery_id].outcome, history[failed.delivery_id].error) == ("failed", "HTTP 503")
    assert history[failed.delivery_id].duration_ms == 7 and rows[failed.delivery_id].status == "failed"
    assert [(h["outcome"], h["error_class"]) for h in shown_failed["history"]] == [
        ("failed", "RetryableError"), ("failed", "RetryableError")]
    assert (history[lost.delivery_id].outcome, history[lost.delivery_id].receipt) == ("delivered", "r-3")
    assert rows[lost.delivery_id].status == "in_flight" and rows[lost.delivery_id].claim_id == "another-claim"


def test_migration_gives_lanes_to_the_outbox_and_cursors_after_the_routed_events(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    for head in ("0002_addressing", "0003_identity", "0004_delivery", "0005_audit", "0006_data_quality",
                 "0007_health", "0008_identity_index"):  # a store made before lanes
        upgrade(store.engine, head)
    with store.session() as s:
        s.execute(text(
            "INSERT INTO outbox (event_id, entity_type, entity_id, person_id, kind, version, ordering_key, payload, "
            "source, created_at, status) VALUES "
            "('e1', 'Person', 'p1', 'p1', 'created', 1, 'p1', '{}', 't', '2026-11-01 00:00:00', 'delivered'), "
            "('e2', 'Person', 'p2', 'p2', 'created', 1, 'p2', '{}', 't', '2026-11-01 00:00:00', 'routed'), "
            "('e3', 'Person', 'p3', 'p3', 'created', 1, 'p3', '{}', 't', '2026-11-01 00:00:00', 'pending')"))
        s.execute(text(
            "INSERT INTO deliveries (outbox_id, event_id, target, ordering_key, generation, status, attempts, "
            "next_attempt_at, created_at, updated_at) VALUES "
            "(1, 'e1', 'finance', 'p1', 0, 'delivered', 1, '2026-11-01', '2026-11-01', '2026-11-01'), "
            "(2, 'e2', 'finance', 'p2', 0, 'failed', 1, '2026-11-01', '2026-11-01', '2026-11-01')"))
    upgrade(store.engine)
    with store.session() as s:
        lanes = dict(s.execute(select(OutboxEvent.ordering_key, OutboxEvent.lane)).all())
        cursors = s.execute(select(DeliveryCursor.target, DeliveryCursor.lane, DeliveryCursor.position)).all()
        status = hub_status(s)
    store.dispose()
    assert lanes == {k: lane_of(k) for k in ("p1", "p2", "p3")}
    # the routed events stay with their rows; the one never routed is read by the cursor
    assert sorted(cursors) == [("finance", lane, 2) for lane in range(OUTBOX_LANES)]
    assert status["outbox"] == {"pending": 2, "delivered": 1, "dead": 0}
