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

from sqlalchemy import ColumnElement, and_, false, func, insert, literal, or_, select, text, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.delivery.config import WILDCARD, DeliveryConfig
from hub.store.db import Store
from hub.store.delivery import PENDING, Delivery
from hub.store.tables import Base, OutboxEvent, UtcDateTime, utcnow

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


def _wanted(config: DeliveryConfig, target: str) -> ColumnElement[bool]:
    """The SQL condition on outbox rows for events ``target`` subscribes to."""
    arms: list[ColumnElement[bool]] = []
    for sub in config.subscriptions:
        if sub.target != target:
            continue
        conds: list[ColumnElement[bool]] = []
        if WILDCARD not in sub.entity_types:
            conds.append(OutboxEvent.entity_type.in_(sub.entity_types))
        if WILDCARD not in sub.kinds:
            conds.append(OutboxEvent.kind.in_(sub.kinds))
        arms.append(and_(true(), *conds))
    return or_(false(), *arms)


_KEY_COLUMN = {"person": OutboxEvent.ordering_key, "entity": OutboxEvent.entity_id, "none": OutboxEvent.event_id}


def route_pending(session: Session, config: DeliveryConfig, limit: int) -> int:
    """Route up to ``limit`` pending outbox events in the caller's transaction; returns how many.

    Runs in the database (one INSERT ... SELECT per target), so routing costs no
    round trip per event. Returns 0 without waiting when another router holds the lock.
    """
    if not _try_route_lock(session):
        return 0
    window = (select(OutboxEvent.id).where(OutboxEvent.status == PENDING).order_by(OutboxEvent.id).limit(limit)
              .subquery())
    lo, hi, n = session.execute(select(func.min(window.c.id), func.max(window.c.id), func.count())).one()
    if not n:
        return 0
    in_window = and_(OutboxEvent.status == PENDING, OutboxEvent.id.between(lo, hi))
    now = literal(utcnow(), UtcDateTime())
    columns = ["outbox_id", "event_id", "target", "ordering_key", "generation", "status", "attempts",
               "next_attempt_at", "created_at", "updated_at"]
    for target in config.enabled_targets():
        rows = select(
            OutboxEvent.id, OutboxEvent.event_id, literal(target), _KEY_COLUMN[config.targets[target].ordering],
            literal(0), literal(PENDING), literal(0), now, now, now,
        ).where(in_window, _wanted(config, target)).order_by(OutboxEvent.id)
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            session.execute(pg_insert(Delivery).from_select(columns, rows).on_conflict_do_nothing())
        elif dialect == "sqlite":
            session.execute(sqlite_insert(Delivery).from_select(columns, rows).on_conflict_do_nothing())
        else:
            session.execute(insert(Delivery).from_select(columns, rows))
    session.execute(update(OutboxEvent).where(in_window).values(status=ROUTED))
    return int(n)


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
