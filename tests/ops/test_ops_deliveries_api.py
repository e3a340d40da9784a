"""Operators see, replay and cancel deliveries through /api/ops/deliveries; the audit shows who."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.simulators.counting_target import CountingTarget
from hub.delivery.worker import DeliveryLoop, ensure_circuits
from hub.store.audit import AuditEvent
from hub.store.db import Store
from hub.store.delivery import Delivery, DeliveryHistory
from tests.support.delivery import add_events, count, delivery_config, drain, hub_settings, person_id
from tests.support.record_hub import Hub, make_hub


@pytest.fixture
def target() -> Iterator[CountingTarget]:
    sim = CountingTarget().start()
    yield sim
    sim.stop()


@pytest.fixture
def hub(store: Store, tmp_path: Path) -> Iterator[Hub]:
    yield from make_hub(store, tmp_path, 0)


def test_admin_replays_a_dead_letter_and_cancels_another_through_the_api(
    hub: Hub, store: Store, target: CountingTarget
) -> None:
    config = delivery_config(target.url)
    add_events(store, 2, 2)
    target.fail_keys([f"{person_id(0)}:1", f"{person_id(1)}:1"], "refused by the ledger")
    ensure_circuits(store, config.enabled_targets())
    loop = DeliveryLoop(store, hub_settings(store.url), config, "api-test", threading.Event())

    try:
        drain(loop, lambda: count(store, "dead") == 2, timeout=30, what="two dead letters")
    finally:
        loop.close()
    admin = hub.headers("ops.sam", "admin")
    assert hub.client.get("/api/ops/deliveries?status=dead").status_code == 401
    assert hub.client.get("/api/ops/deliveries?status=dead",
                          headers=hub.headers("sw.owen", "social_worker", "ASC-OPN")).status_code == 403
    dead = hub.client.get("/api/ops/deliveries?status=dead", headers=admin).json()
    assert len(dead) == 2 and all("payload" not in d for d in dead)
    first, second = sorted(d["id"] for d in dead)

    target.heal()
    replay = hub.client.post(f"/api/ops/deliveries/{first}/retry", headers=admin).json()
    assert replay["replay_of"] == first and replay["status"] == "pending"
    cancelled = hub.client.post(f"/api/ops/deliveries/{second}/cancel", json={"reason": "duplicate"},
                                headers=admin).json()
    assert cancelled["status"] == "cancelled"
    assert hub.client.post(f"/api/ops/deliveries/{first}/cancel", json={}, headers=admin).status_code == 409

    shown = hub.client.get(f"/api/ops/deliveries/{first}", headers=admin).json()
    assert shown["id"] == first
    with store.session() as s:
        actors = set(s.scalars(select(DeliveryHistory.actor).where(DeliveryHistory.actor.is_not(None))))
        audited = list(s.scalars(select(AuditEvent).where(AuditEvent.user_id == "ops.sam")))
    assert "ops.sam" in actors
    assert len(audited) >= 4


def test_a_sealed_persons_deliveries_are_not_shown_to_an_admin_the_seal_does_not_name(
    hub: Hub, store: Store, target: CountingTarget
) -> None:
    sealed, ann = hub.people["sealed"], hub.people["ann"]
    config = delivery_config(target.url)
    target.fail_keys([f"{sealed}:1", f"{ann}:1"], "refused by the ledger")
    ensure_circuits(store, config.enabled_targets())
    loop = DeliveryLoop(store, hub_settings(store.url), config, "api-seal", threading.Event())

    try:
        drain(loop, lambda: count(store, "dead") >= 2, timeout=30, what="two dead letters")
    finally:
        loop.close()
    admin = hub.headers("ops.sam", "admin")
    listed = hub.client.get("/api/ops/deliveries", headers=admin).json()
    keys = {d["ordering_key"] for d in listed}
    assert ann in keys and sealed not in keys
    with store.session() as s:
        hidden = s.scalar(select(Delivery.id).where(Delivery.ordering_key == sealed))
    assert hidden is not None
    for method, path in (("GET", f"/api/ops/deliveries/{hidden}"), ("POST", f"/api/ops/deliveries/{hidden}/retry")):
        a = hub.client.request(method, path, headers=admin)
        b = hub.client.request(method, path.replace(str(hidden), "987654"), headers=admin)
        assert a.status_code == b.status_code == 404
        assert a.json()["detail"].replace(str(hidden), "N") == b.json()["detail"].replace("987654", "N")
    assert hub.client.get("/api/ops/deliveries", params={"ordering_key": sealed}, headers=admin).json() == []
