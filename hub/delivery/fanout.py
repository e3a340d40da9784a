"""Fan-out: each new outbox event becomes one delivery row per subscribed target.

Routing is idempotent (a unique (event, target, generation) row, inserted with
ON CONFLICT DO NOTHING) and runs in outbox order, one router at a time: on
PostgreSQL behind a transaction-level advisory lock, so several workers may all
try and exactly one routes at a time. Writers of outbox rows take the same lock
(:func:`hold_outbox_order`) just before inserting, which makes outbox ids rise in
commit order: the router never sees an event before an older one that is still
being committed, so per-key order cannot be broken at this step.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.delivery.config import DeliveryConfig
from hub.store.db import Store
from hub.store.delivery import PENDING, Delivery
from hub.store.tables import Base, OutboxEvent, utcnow

# Outbox statuses: routed = its deliveries exist; delivered/dead are settled from them.
ROUTED = "routed"
# Arbitrary constants naming the hub's PostgreSQL advisory locks: writers of outbox
# rows serialise their commits on the first; routers take turns on the second.
OUTBOX_ORDER_LOCK = 0x43480001
ROUTER_LOCK = 0x43480002


def hold_outbox_order(session: Session) -> None:
    """Take the outbox-order lock until the session's transaction ends (PostgreSQL; a no-op on SQLite).

    Call it just before inserting outbox rows: ids are then handed out in commit order.
    SQLite already has one writer at a time.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTBOX_ORDER_LOCK})


def _try_route_lock(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ROUTER_LOCK}))


def insert_new(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert rows, skipping any that a unique key says exist already (ON CONFLICT DO NOTHING)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(pg_insert(model).on_conflict_do_nothing(), rows)
    elif dialect == "sqlite":
        session.execute(sqlite_insert(model).on_conflict_do_nothing(), rows)
    else:
        session.execute(insert(model), rows)


def ordering_key_for(config: DeliveryConfig, target: str, person_key: str, entity_id: str, event_id: str) -> str:
    """The key a target's deliveries of this event are ordered by."""
    ordering = config.targets[target].ordering
    if ordering == "person":
        return person_key
    if ordering == "entity":
        return entity_id
    return event_id


def route_pending(session: Session, config: DeliveryConfig, limit: int) -> int:
    """Route up to ``limit`` pending outbox events in the caller's transaction; returns how many.

    Returns 0 without waiting when another router holds the lock.
    """
    if not _try_route_lock(session):
        return 0
    rows = session.execute(
        select(OutboxEvent.id, OutboxEvent.event_id, OutboxEvent.entity_type, OutboxEvent.kind,
               OutboxEvent.entity_id, OutboxEvent.ordering_key)
        .where(OutboxEvent.status == PENDING).order_by(OutboxEvent.id).limit(limit)
    ).all()
    if not rows:
        return 0
    now = utcnow()
    deliveries = [
        {"outbox_id": r.id, "event_id": r.event_id, "target": target, "generation": 0, "status": PENDING,
         "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now,
         "ordering_key": ordering_key_for(config, target, r.ordering_key, r.entity_id, r.event_id)}
        for r in rows
        for target in config.targets_for(r.entity_type, r.kind)
    ]
    if deliveries:
        insert_new(session, Delivery, deliveries)
    session.execute(
        update(OutboxEvent).where(OutboxEvent.id.in_([r.id for r in rows]), OutboxEvent.status == PENDING)
        .values(status=ROUTED)
    )
    return len(rows)


def fan_out(store: Store, config: DeliveryConfig, *, batch: int = 5000, max_batches: int = 100) -> int:
    """Route every pending outbox event, one transaction per ``batch``; returns how many were routed."""
    total = 0
    for _ in range(max_batches):
        with store.session() as session:
            n = route_pending(session, config, batch)
        total += n
        if n < batch:
            break
    return total
