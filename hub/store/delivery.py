"""Tables of delivery: one row per (event, target), its history, circuits, job runs and leases.

A :class:`Delivery` is the state of one change event on its way to one target.
A replay makes a new row for the same (event, target) with the next
``generation``, linked to the original through ``replay_of``; the original keeps
its history and records ``replayed_by``. Every attempt and every operator action
is a :class:`DeliveryHistory` row naming the worker or the acting user, except a
successful attempt that settled its row: the row itself keeps that one (worker in
``claimed_by``, ``attempts``, ``delivered_at``, ``receipt``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.tables import Base, BigId, utcnow

# Statuses of a delivery row.
PENDING = "pending"
IN_FLIGHT = "in_flight"
DELIVERED = "delivered"
FAILED = "failed"  # a transient failure; waits for next_attempt_at
DEAD = "dead"
CANCELLED = "cancelled"
STATUSES = (PENDING, IN_FLIGHT, DELIVERED, FAILED, DEAD, CANCELLED)
CLAIMABLE = (PENDING, FAILED)

# Names of the leases: the scheduler leader (heartbeated for all to see) and the one SQLite worker.
LEADER_LEASE = "scheduler"
SQLITE_WORKER_LEASE = "sqlite-worker"


class Delivery(Base):
    """One change event on its way to one target."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("outbox_id", "target", "generation", name="uq_deliveries_event_target_generation"),
        # What a worker scans: claimable rows of a target in event order.
        Index("ix_deliveries_claimable", "target", "outbox_id",
              postgresql_where=text("status IN ('pending', 'failed')"),
              sqlite_where=text("status IN ('pending', 'failed')")),
        # What blocks a key: its rows not yet settled (dead ones block until replayed or cancelled).
        Index("ix_deliveries_open_key", "target", "ordering_key", "outbox_id",
              postgresql_where=text("status IN ('pending', 'failed', 'in_flight', 'dead')"),
              sqlite_where=text("status IN ('pending', 'failed', 'in_flight', 'dead')")),
        # Operators' lists and the lost-claim sweep; delivered rows (the bulk) stay out of it, so
        # marking a row delivered costs no entry here.
        Index("ix_deliveries_status_target", "status", "target", "updated_at",
              postgresql_where=text("status <> 'delivered'"), sqlite_where=text("status <> 'delivered'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    event_id: Mapped[str] = mapped_column(String(36))
    target: Mapped[str] = mapped_column(String(64))
    ordering_key: Mapped[str] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column()
    claim_id: Mapped[str | None] = mapped_column(String(40))
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(64))
    receipt: Mapped[str | None] = mapped_column(String(256))
    replay_of: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    replayed_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()


class DeliveryHistory(Base):
    """One attempt at a delivery (a settled success is on the delivery row), or an action on it, and by whom."""

    __tablename__ = "delivery_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(16))  # attempt, retry, replay, cancel, requeue
    outcome: Mapped[str] = mapped_column(String(16))  # delivered, failed, dead, cancelled, pending
    attempt: Mapped[int | None] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(128))
    actor: Mapped[str | None] = mapped_column(String(128))
    error_class: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    receipt: Mapped[str | None] = mapped_column(String(256))
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class DeliveryCursor(Base):
    """How far one target has taken one outbox lane: every wanted event up to ``position`` is settled.

    Settled means delivered, unless the event has a delivery row (a failure, a dead letter, an event held
    behind one): the rows say what became of those. A worker holds a lane while it pushes a batch
    (``holder``, ``claim_id``, ``lease_until``; the batch is the lane's events after ``position`` up to
    ``claim_upto``) and moves ``position`` when the batch has been recorded. ``delivered`` counts the events
    delivered through the cursor; ``times_lost`` the holders that vanished before reporting back.
    """

    __tablename__ = "delivery_cursors"

    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    lane: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigId, default=0)
    holder: Mapped[str | None] = mapped_column(String(128))
    claim_id: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[datetime | None] = mapped_column()
    served_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered: Mapped[int] = mapped_column(BigId, default=0)
    times_lost: Mapped[int] = mapped_column(Integer, default=0)
    lost_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CircuitState(Base):
    """A target's circuit breaker, shared by every worker: closed, open or half open."""

    __tablename__ = "delivery_circuits"

    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="closed")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None] = mapped_column()
    retry_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    times_opened: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobRun(Base):
    """One run of a scheduled job: on which node, when, how long, how it ended."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_id", "job", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Lease(Base):
    """Who holds a named role (the scheduler leader; the one SQLite worker) and until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(default=utcnow)
