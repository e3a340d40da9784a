"""Fan-out: each new outbox event becomes one delivery row per subscribed target.

Routing is idempotent (a unique (event, target, generation) row; a row that
exists already is skipped) and runs in outbox order, one router at a time: on
PostgreSQL behind a transaction-level advisory lock, so several workers may all
try and exactly one routes at a time. Writers of outbox rows take the same lock
(:func:`hold_outbox_order`) just before inserting, which makes outbox ids rise in
commit order: the router never sees an event before an older one that is still
being committed, so per-key order cannot be broken at this step.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
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
    # Routing commits without waiting for the WAL flush (set in the same round trip), like claims and outcomes
    # (docs/delivery.md): a routing lost in a server crash leaves its events pending, to be routed again, and
    # anything pushed meanwhile is pushed again, which the idempotency key makes harmless. The outbox rows
    # themselves were committed durably by their writers.
    return bool(session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key) FROM set_config('synchronous_commit', 'off', true)"),
        {"key": ROUTER_LOCK}))


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


def _wanted(config: DeliveryConfig, target: str, cols: Any = OutboxEvent) -> ColumnElement[bool]:
    """The SQL condition on outbox rows (or ``cols`` with the same column names) for events ``target`` wants."""
    arms: list[ColumnElement[bool]] = []
    for sub in config.subscriptions:
        if sub.target != target:
            continue
        conds: list[ColumnElement[bool]] = []
        if WILDCARD not in sub.entity_types:
            conds.append(cols.entity_type.in_(sub.entity_types))
        if WILDCARD not in sub.kinds:
            conds.append(cols.kind.in_(sub.kinds))
        arms.append(and_(true(), *conds))
    return or_(false(), *arms)


_KEY_COLUMN = {"person": "ordering_key", "entity": "entity_id", "none": "event_id"}
_COLUMNS = ["outbox_id", "event_id", "target", "ordering_key", "generation", "status", "attempts",
            "next_attempt_at", "created_at", "updated_at"]


# The PostgreSQL routing statement of each subscriptions config, built once (Core, bound parameters): building
# and compiling it per routing transaction would cost milliseconds on the one path that cannot run in parallel.
_ROUTING: dict[int, tuple[DeliveryConfig, Any]] = {}


def _routing_statement(config: DeliveryConfig) -> Any:
    """One statement: mark the oldest pending events routed and insert their deliveries for every target."""
    cached = _ROUTING.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    outbox: Table = OutboxEvent.__table__  # type: ignore[assignment]
    deliveries: Table = Delivery.__table__  # type: ignore[assignment]
    now = bindparam("now", type_=UtcDateTime())
    oldest = (select(outbox.c.id).where(outbox.c.status == PENDING).order_by(outbox.c.id)
              .limit(bindparam("limit")).scalar_subquery())
    moved = (
        update(outbox).where(outbox.c.id.in_(oldest)).values(status=ROUTED)
        .returning(outbox.c.id, outbox.c.event_id, outbox.c.entity_type, outbox.c.entity_id, outbox.c.kind,
                   outbox.c.ordering_key)
        .cte("moved")
    )
    # Idempotent by an anti-join rather than ON CONFLICT DO NOTHING: routers take turns (the lock), so nothing
    # else inserts generation 0 meanwhile, and a plain insert costs less than a speculative one.
    had = deliveries.alias("had")
    inserts = [
        insert(deliveries).from_select(_COLUMNS, select(
            moved.c.id, moved.c.event_id, literal(target), moved.c[_KEY_COLUMN[config.targets[target].ordering]],
            literal(0), literal(PENDING), literal(0), now, now, now,
        ).where(_wanted(config, target, moved.c), ~exists().where(
            had.c.outbox_id == moved.c.id, had.c.target == target, had.c.generation == 0,
        )).order_by(moved.c.id)).cte(f"to_{i}")
        for i, target in enumerate(config.enabled_targets())
    ]
    statement = select(func.count()).select_from(moved).add_cte(*inserts)
    if len(_ROUTING) > 16:  # configs are long-lived; this only bounds a process that makes many
        _ROUTING.clear()
    _ROUTING[id(config)] = (config, statement)
    return statement


def route_pending(session: Session, config: DeliveryConfig, limit: int) -> int:
    """Route up to ``limit`` pending outbox events in the caller's transaction; returns how many.

    Runs in the database, so routing costs no round trip per event: on PostgreSQL
    one statement marks the oldest pending events routed and inserts their
    deliveries for every target; elsewhere one INSERT ... SELECT per target and
    an UPDATE. Returns 0 without waiting when another router holds the lock.
    """
    if not _try_route_lock(session):
        return 0
    now = literal(utcnow(), UtcDateTime())
    if session.get_bind().dialect.name == "postgresql":
        return int(session.scalar(_routing_statement(config), {"now": utcnow(), "limit": limit}) or 0)
    window = (select(OutboxEvent.id).where(OutboxEvent.status == PENDING).order_by(OutboxEvent.id).limit(limit)
              .subquery())
    lo, hi, n = session.execute(select(func.min(window.c.id), func.max(window.c.id), func.count())).one()
    if not n:
        return 0
    in_window = and_(OutboxEvent.status == PENDING, OutboxEvent.id.between(lo, hi))
    for target in config.enabled_targets():
        rows = select(
            OutboxEvent.id, OutboxEvent.event_id, literal(target),
            getattr(OutboxEvent, _KEY_COLUMN[config.targets[target].ordering]),
            literal(0), literal(PENDING), literal(0), now, now, now,
        ).where(in_window, _wanted(config, target)).order_by(OutboxEvent.id)
        dialect = session.get_bind().dialect.name
        if dialect == "sqlite":
            session.execute(sqlite_insert(Delivery).from_select(_COLUMNS, rows).on_conflict_do_nothing())
        else:
            session.execute(insert(Delivery).from_select(_COLUMNS, rows))
    session.execute(update(OutboxEvent).where(in_window).values(status=ROUTED))
    return int(n)


# The first routing transaction of a run: small, so that on a burst the workers start delivering at once.
FIRST_ROUTING_BATCH = 500


def fan_out(store: Store, config: DeliveryConfig, *, batch: int = 5000, max_batches: int = 100) -> int:
    """Route every pending outbox event; returns how many were routed.

    Transactions grow from :data:`FIRST_ROUTING_BATCH` events, doubling up to ``batch``: on a burst the
    first deliveries start after a small first transaction, and a backlog is still routed in a few.
    """
    total = 0
    size = min(batch, FIRST_ROUTING_BATCH)
    for _ in range(max_batches):
        with store.session() as session:
            n = route_pending(session, config, size)
        total += n
        if n < size:
            break
        size = min(batch, size * 2)
    return total
