"""Outbox order and idempotent inserts shared by the writers of outbox rows and by delivery.

Delivery reads each outbox lane behind a cursor (:mod:`hub.delivery.lanes`), which
is only safe if outbox ids rise in commit order: a cursor must never pass an id
whose transaction is still open, or that event would be skipped when it commits.
Every writer of outbox rows therefore takes a transaction-level advisory lock
(:func:`hold_outbox_order`) just before inserting them, and holds it until it
commits; ids are then handed out in commit order. SQLite has one writer at a
time already.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.store.tables import Base

# An arbitrary constant naming the hub's PostgreSQL advisory lock that writers of outbox rows serialise on.
OUTBOX_ORDER_LOCK = 0x43480001


def hold_outbox_order(session: Session) -> None:
    """Take the outbox-order lock until the session's transaction ends (PostgreSQL; a no-op on SQLite).

    Call it just before inserting outbox rows: ids are then handed out in commit order.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTBOX_ORDER_LOCK})


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
