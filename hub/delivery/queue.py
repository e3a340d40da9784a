"""The delivery queue in the store: claiming batches in order, recording outcomes, recovering lost claims.

**Ordering.** Within a target, the deliveries of one ordering key go out in
outbox order, one at a time: a row is claimable only when no older row of its
key is still undelivered (pending, failed, or dead and not replayed) and no row
of its key is in flight. A dead letter therefore *blocks its key* until an
operator replays or cancels it, so a person's later changes never overtake a
change the target refused. Independent keys flow in parallel, on as many
workers as run.

**Claiming.** On PostgreSQL a worker picks the oldest claimable rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` and marks them in flight with a lease and
a claim id in the same statement, then commits before calling the target, so
no database transaction is held open across the network. A worker that dies
leaves its rows in flight; when their lease ends :func:`requeue_lost` makes them
failed-and-due again (the target's idempotency key makes the second push
harmless). The outcome of a push is written only if the claim is still the
worker's own.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    Engine,
    Table,
    and_,
    bindparam,
    case,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, aliased

from hub.contract import ChangeEvent
from hub.delivery.config import RetryPolicy
from hub.delivery.fanout import ROUTED
from hub.store.delivery import (
    CLAIMABLE,
    DEAD,
    DELIVERED,
    FAILED,
    IN_FLIGHT,
    PENDING,
    Delivery,
    DeliveryHistory,
)
from hub.store.tables import OutboxEvent, utcnow

_TABLE: Table = Delivery.__table__  # type: ignore[assignment]
# The statuses of rows that may hold their ordering key back (the predicate of ix_deliveries_open_key).
OPEN_KEY = (PENDING, FAILED, IN_FLIGHT, DEAD)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery row this worker holds in flight, with the event to push."""

    delivery_id: int
    attempt: int
    claim_id: str
    event: ChangeEvent


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed delivery: delivered, or failed transiently or for good."""

    delivery_id: int
    result: str  # "delivered", "transient" or "permanent"
    receipt: str | None = None
    error_class: str | None = None
    error: str | None = None


def backoff_seconds(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """How long to wait after failed attempt number ``attempt`` (1-based): capped exponential, full jitter."""
    ceiling = min(policy.max_seconds, policy.base_seconds * (2 ** max(0, attempt - 1)))
    if policy.jitter == "none":
        return ceiling
    return (rng or random).uniform(0, ceiling)


def prefer_custom_plans(engine: Engine) -> None:
    """Make PostgreSQL plan delivery queries for the table as it is now, on every connection of ``engine``.

    psycopg prepares a statement after a few runs and PostgreSQL may then reuse a
    generic plan made while the queue was empty (a sequential scan per candidate
    row): with thousands of rows one claim would take tens of seconds.
    """
    if engine.dialect.name != "postgresql" or event.contains(engine, "connect", _custom_plans):
        return
    event.listen(engine, "connect", _custom_plans)
    engine.dispose()  # pooled connections made before now reconnect with the setting


def _custom_plans(dbapi_conn: Any, _record: Any) -> None:
    with dbapi_conn.cursor() as cur:
        cur.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_conn.commit()


def relax_commit(session: Session) -> None:
    """Let this delivery transaction commit without waiting for its WAL flush (PostgreSQL).

    Safe for delivery state: a claim or outcome lost in a server crash only
    means the batch is pushed again, and the target's idempotency key makes
    that harmless. Never used for the data the hub holds.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))


def claimable_rows(target: str, now: datetime, limit: int, *, skip_locked: bool) -> Any:
    """The SELECT of the oldest claimable rows of ``target``, at most one per ordering key."""
    d = aliased(Delivery, name="d")
    b = aliased(Delivery, name="b")
    # d may go when it is the head of its key: the oldest row of the key not yet settled, with no row of
    # the key in flight (an in-flight row counts as -1, so the head test fails). Written as a correlated
    # aggregate so PostgreSQL runs it per candidate on ix_deliveries_open_key, whatever its statistics say.
    head = (
        select(func.min(case((b.status == IN_FLIGHT, -1), else_=b.outbox_id)))
        .where(b.target == target, b.ordering_key == d.ordering_key, b.status.in_(OPEN_KEY),
               or_(b.status != DEAD, b.replayed_by.is_(None)))
        .scalar_subquery()
    )
    query = (
        select(d.id)
        .where(d.target == target, d.status.in_(CLAIMABLE), d.next_attempt_at <= now, head == d.outbox_id)
        .order_by(d.outbox_id)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True, of=d)
    return query


def claim(session: Session, target: str, limit: int, worker: str, lease_seconds: float) -> list[Claimed]:
    """Take up to ``limit`` deliveries of ``target`` in flight for ``worker``; the caller commits."""
    now = utcnow()
    claim_id = uuid.uuid4().hex
    postgres = session.get_bind().dialect.name == "postgresql"
    relax_commit(session)
    # A CTE runs once: PostgreSQL locks the picked rows (SKIP LOCKED) and the UPDATE then joins them,
    # never re-evaluating the locking subquery row by row.
    picked = claimable_rows(target, now, limit, skip_locked=postgres).cte("picked")
    rows = session.execute(
        update(Delivery)
        .where(Delivery.id == picked.c.id)
        .values(status=IN_FLIGHT, attempts=Delivery.attempts + 1, claim_id=claim_id, claimed_by=worker,
                lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
        .returning(Delivery.id, Delivery.outbox_id, Delivery.attempts, Delivery.ordering_key)
        .execution_options(synchronize_session=False)
    ).all()
    if not rows:
        return []
    events = {
        e.id: e for e in session.execute(
            select(OutboxEvent.id, OutboxEvent.event_id, OutboxEvent.entity_type, OutboxEvent.entity_id,
                   OutboxEvent.person_id, OutboxEvent.kind, OutboxEvent.version, OutboxEvent.payload,
                   OutboxEvent.created_at, OutboxEvent.source)
            .where(OutboxEvent.id.in_([r.outbox_id for r in rows]))
        )
    }
    claimed = []
    for r in sorted(rows, key=lambda r: r.outbox_id):
        e = events[r.outbox_id]
        event = ChangeEvent(
            event_id=e.event_id, entity_type=e.entity_type, entity_id=e.entity_id, person_id=e.person_id,
            kind=e.kind, version=e.version, payload=orjson.loads(e.payload), created_at=e.created_at,
            source=e.source, ordering_key=r.ordering_key, sequence=e.id,
        )
        claimed.append(Claimed(r.id, r.attempts, claim_id, event))
    return claimed


def record_outcomes(
    session: Session,
    claimed: Sequence[Claimed],
    outcomes: Sequence[Outcome],
    policy: RetryPolicy,
    worker: str,
    duration_ms: int,
) -> dict[str, int]:
    """Write each outcome (only where the claim is still this worker's) and its history; returns counts."""
    now = utcnow()
    by_id = {c.delivery_id: c for c in claimed}
    changes: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    counts = {DELIVERED: 0, FAILED: 0, DEAD: 0}
    for o in outcomes:
        c = by_id[o.delivery_id]
        row: dict[str, Any] = {
            "b_id": o.delivery_id, "b_claim": c.claim_id, "receipt": None, "delivered_at": None,
            "error_class": o.error_class, "last_error": o.error, "next_attempt_at": now,
        }
        if o.result == "delivered":
            status = DELIVERED
            row.update(receipt=o.receipt, delivered_at=now)
        elif o.result == "permanent":
            status = DEAD
        elif c.attempt >= policy.max_attempts:
            status = DEAD
            row["last_error"] = f"retries exhausted after {c.attempt} attempts: {o.error}"
        else:
            status = FAILED
            row["next_attempt_at"] = now + timedelta(seconds=backoff_seconds(policy, c.attempt))
        row["status"] = status
        counts[status] += 1
        changes.append(row)
        history.append({
            "delivery_id": o.delivery_id, "at": now, "action": "attempt", "outcome": status, "attempt": c.attempt,
            "worker": worker, "error_class": o.error_class, "error": row["last_error"], "receipt": o.receipt,
            "duration_ms": duration_ms,
        })
    if changes:
        relax_commit(session)
        _write_outcomes(session, changes, now)
        _write_history(session, history)
    return counts


# PostgreSQL: every outcome of a batch in one statement, its columns passed as arrays
# (a fixed SQL text, so nothing is compiled per batch).
_OUTCOMES_PG = text("""
UPDATE deliveries AS d SET
    status = v.status, receipt = v.receipt, delivered_at = v.delivered_at, error_class = v.error_class,
    last_error = v.last_error, next_attempt_at = v.next_attempt_at,
    lease_until = NULL, claim_id = NULL, updated_at = :now
FROM unnest(CAST(:ids AS bigint[]), CAST(:claims AS text[]), CAST(:statuses AS text[]),
            CAST(:receipts AS text[]), CAST(:delivered AS timestamptz[]), CAST(:classes AS text[]),
            CAST(:errors AS text[]), CAST(:next AS timestamptz[]))
     AS v(id, claim_id, status, receipt, delivered_at, error_class, last_error, next_attempt_at)
WHERE d.id = v.id AND d.claim_id = v.claim_id AND d.status = 'in_flight'
""")


_HISTORY_PG = text("""
INSERT INTO delivery_history
    (delivery_id, at, action, outcome, attempt, worker, error_class, error, receipt, duration_ms)
SELECT v.delivery_id, :at, 'attempt', v.outcome, v.attempt, :worker, v.error_class, v.error, v.receipt, :duration_ms
FROM unnest(CAST(:ids AS bigint[]), CAST(:outcomes AS text[]), CAST(:attempts AS int[]),
            CAST(:classes AS text[]), CAST(:errors AS text[]), CAST(:receipts AS text[]))
     AS v(delivery_id, outcome, attempt, error_class, error, receipt)
""")


def _write_history(session: Session, history: list[dict[str, Any]]) -> None:
    """One attempt row per delivery of the batch: one statement on PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        first = history[0]
        session.execute(_HISTORY_PG, {
            "at": first["at"], "worker": first["worker"], "duration_ms": first["duration_ms"],
            "ids": [h["delivery_id"] for h in history], "outcomes": [h["outcome"] for h in history],
            "attempts": [h["attempt"] for h in history], "classes": [h["error_class"] for h in history],
            "errors": [h["error"] for h in history], "receipts": [h["receipt"] for h in history],
        })
        return
    session.execute(insert(DeliveryHistory), history)


def _write_outcomes(session: Session, changes: list[dict[str, Any]], now: datetime) -> None:
    """Update the claimed rows, only where the claim is still ours."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_OUTCOMES_PG, {
            "now": now, "ids": [r["b_id"] for r in changes], "claims": [r["b_claim"] for r in changes],
            "statuses": [r["status"] for r in changes], "receipts": [r["receipt"] for r in changes],
            "delivered": [r["delivered_at"] for r in changes], "classes": [r["error_class"] for r in changes],
            "errors": [r["last_error"] for r in changes], "next": [r["next_attempt_at"] for r in changes],
        })
        return
    session.execute(
        _TABLE.update()
        .where(_TABLE.c.id == bindparam("b_id"), _TABLE.c.claim_id == bindparam("b_claim"),
               _TABLE.c.status == IN_FLIGHT)
        .values(status=bindparam("status"), receipt=bindparam("receipt"),
                delivered_at=bindparam("delivered_at"), error_class=bindparam("error_class"),
                last_error=bindparam("last_error"), next_attempt_at=bindparam("next_attempt_at"),
                lease_until=None, claim_id=None, updated_at=now),
        changes,
    )


def requeue_lost(session: Session, policies: dict[str, RetryPolicy], default: RetryPolicy) -> int:
    """Make in-flight rows whose lease ended due again (or dead when out of attempts); returns how many."""
    now = utcnow()
    lost = session.execute(
        select(Delivery.id, Delivery.target, Delivery.attempts, Delivery.claimed_by)
        .where(Delivery.status == IN_FLIGHT, Delivery.lease_until < now)
        .with_for_update(skip_locked=True)
    ).all()
    for row in lost:
        policy = policies.get(row.target, default)
        status = DEAD if row.attempts >= policy.max_attempts else FAILED
        message = f"worker {row.claimed_by} did not report back before its lease ended"
        session.execute(
            update(Delivery).where(Delivery.id == row.id, Delivery.status == IN_FLIGHT)
            .values(status=status, lease_until=None, claim_id=None, next_attempt_at=now,
                    error_class="WorkerLost", last_error=message, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.add(DeliveryHistory(
            delivery_id=row.id, at=now, action="requeue", outcome=status, attempt=row.attempts,
            worker=row.claimed_by, error_class="WorkerLost", error=message,
        ))
    return len(lost)


def settle_outbox(session: Session, limit: int = 10_000) -> int:
    """Mark routed outbox events delivered (every delivery done or cancelled) or dead; returns how many."""
    open_statuses = (PENDING, IN_FLIGHT, FAILED)
    unsettled = exists().where(
        Delivery.outbox_id == OutboxEvent.id,
        or_(Delivery.status.in_(open_statuses), and_(Delivery.status == DEAD, Delivery.replayed_by.is_(None))),
    )
    ids = list(session.scalars(
        select(OutboxEvent.id).where(OutboxEvent.status.in_((ROUTED, "dead")), ~unsettled)
        .order_by(OutboxEvent.id).limit(limit)
    ))
    if ids:
        session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(status=DELIVERED))
    dead_ids = list(session.scalars(
        select(OutboxEvent.id).where(
            OutboxEvent.status == ROUTED,
            exists().where(Delivery.outbox_id == OutboxEvent.id, Delivery.status == DEAD,
                           Delivery.replayed_by.is_(None)),
            ~exists().where(Delivery.outbox_id == OutboxEvent.id, Delivery.status.in_(open_statuses)),
        ).limit(limit)
    ))
    if dead_ids:
        session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(dead_ids)).values(status=DEAD))
    return len(ids) + len(dead_ids)

