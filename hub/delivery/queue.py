"""Delivery rows, the exceptions of delivery: claiming them in order, recording outcomes, recovering lost claims.

An event gets a delivery row only when it did not go on the happy path (a failure,
a dead letter, an event held behind one; :mod:`hub.delivery.lanes`), or when an
operator replays one.

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
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    Engine,
    Table,
    bindparam,
    case,
    create_engine,
    event,
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
from hub.store.tables import OutboxEvent, UtcDateTime, utcnow

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


# Engines whose every connection already commits without waiting for the WAL flush (see delivery_engine).
_RELAXED: weakref.WeakSet[Engine] = weakref.WeakSet()


def delivery_engine(engine: Engine) -> Engine | None:
    """PostgreSQL: a delivery loop's own engine for its claims and outcomes; None on other databases.

    Its connections are the loop's alone, so they can be set up once for the hot
    path instead of per transaction: ``synchronous_commit = off`` (delivery state
    only, as :func:`relax_commit` explains), custom plans (as
    :func:`prefer_custom_plans` explains), index scans costed as in memory, and autocommit. Every write on the hot
    path is one statement (the claim with its events; the outcomes with their
    history), atomic by itself, so no BEGIN or COMMIT round trip is needed. No
    pre-ping either: a connection lost with the server fails its statement, the
    loop backs off, and the engine reconnects.
    """
    if engine.dialect.name != "postgresql":
        return None
    # random_page_cost: the queue's tables and indexes are read over and over, so they are in memory; at the
    # default (4) PostgreSQL walks a lane's events through the primary key instead of the (lane, id) index.
    options = "-c synchronous_commit=off -c plan_cache_mode=force_custom_plan -c random_page_cost=1.1"
    given = engine.url.query.get("options")  # keep what the store's URL sets (a search_path, say)
    if given:
        options = f"{given if isinstance(given, str) else ' '.join(given)} {options}"
    own = create_engine(
        engine.url, pool_size=1, max_overflow=4, pool_pre_ping=False, isolation_level="AUTOCOMMIT",
        connect_args={"options": options},
    )
    _RELAXED.add(own)
    return own


def relax_commit(session: Session) -> None:
    """Let this delivery transaction commit without waiting for its WAL flush (PostgreSQL).

    Safe for delivery state: a claim or outcome lost in a server crash only
    means the batch is pushed again, and the target's idempotency key makes
    that harmless. Never used for the data the hub holds.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql" and getattr(bind, "engine", bind) not in _RELAXED:
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


# PostgreSQL: the claim in one round trip. The CTE picks the head-of-key rows and locks them (SKIP LOCKED) once,
# the UPDATE marks them in flight, and the same statement returns each with its outbox event. A fixed SQL text,
# so nothing is built or compiled per batch. The head test is the one of :func:`claimable_rows`.
_CLAIM_PG = text("""
WITH picked AS (
    SELECT d.id FROM deliveries AS d
    WHERE d.target = :target AND d.status IN ('pending', 'failed') AND d.next_attempt_at <= :now
      AND d.outbox_id = (
          SELECT min(CASE WHEN b.status = 'in_flight' THEN -1 ELSE b.outbox_id END) FROM deliveries AS b
          WHERE b.target = :target AND b.ordering_key = d.ordering_key
            AND b.status IN ('pending', 'failed', 'in_flight', 'dead')
            AND (b.status <> 'dead' OR b.replayed_by IS NULL))
    ORDER BY d.outbox_id
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
), claimed AS (
    UPDATE deliveries AS u
    SET status = 'in_flight', attempts = u.attempts + 1, claim_id = :claim_id, claimed_by = :worker,
        lease_until = :lease_until, updated_at = :now
    FROM picked WHERE u.id = picked.id
    RETURNING u.id, u.outbox_id, u.attempts, u.ordering_key
)
SELECT c.id, c.attempts, c.ordering_key, o.id AS outbox_id, o.event_id, o.entity_type, o.entity_id, o.person_id,
       o.kind, o.version, o.payload, o.created_at, o.source
FROM claimed AS c JOIN outbox AS o ON o.id = c.outbox_id
ORDER BY c.outbox_id
""").columns(created_at=UtcDateTime())


def claim(session: Session, target: str, limit: int, worker: str, lease_seconds: float) -> list[Claimed]:
    """Take up to ``limit`` deliveries of ``target`` in flight for ``worker``; the caller commits."""
    now = utcnow()
    claim_id = uuid.uuid4().hex
    relax_commit(session)
    if session.get_bind().dialect.name == "postgresql":
        found = session.execute(_CLAIM_PG, {
            "target": target, "now": now, "limit": limit, "claim_id": claim_id, "worker": worker,
            "lease_until": now + timedelta(seconds=lease_seconds),
        }).all()
        loads = orjson.loads
        return [
            Claimed(id_, attempts, claim_id, ChangeEvent(
                event_id=event_id, entity_type=entity_type, entity_id=entity_id, person_id=person,
                kind=kind, version=version, payload=loads(payload), created_at=created_at,
                source=source, ordering_key=key, sequence=outbox_id,
            ))
            for (id_, attempts, key, outbox_id, event_id, entity_type, entity_id, person, kind, version, payload,
                 created_at, source) in found
        ]
    # A CTE runs once: the picked rows are found once and the UPDATE joins them.
    picked = claimable_rows(target, now, limit, skip_locked=False).cte("picked")
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
    rows: list[dict[str, Any]] = []
    counts = {DELIVERED: 0, FAILED: 0, DEAD: 0}
    for o in outcomes:
        c = by_id[o.delivery_id]
        error = o.error
        next_attempt_at = now
        if o.result == "delivered":
            status = DELIVERED
        elif o.result == "permanent":
            status = DEAD
        elif c.attempt >= policy.max_attempts:
            status = DEAD
            error = f"retries exhausted after {c.attempt} attempts: {o.error}"
        else:
            status = FAILED
            next_attempt_at = now + timedelta(seconds=backoff_seconds(policy, c.attempt))
        counts[status] += 1
        rows.append({"id": o.delivery_id, "claim_id": c.claim_id, "status": status, "attempt": c.attempt,
                     "receipt": o.receipt if status == DELIVERED else None, "error_class": o.error_class,
                     "error": error, "next_attempt_at": next_attempt_at})
    if not rows:
        return counts
    relax_commit(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_OUTCOMES_PG, {"rows": orjson.dumps(rows).decode(), "now": now, "worker": worker,
                                       "duration_ms": duration_ms})
        return counts
    settle = (
        _TABLE.update()
        .where(_TABLE.c.id == bindparam("b_id"), _TABLE.c.claim_id == bindparam("b_claim"),
               _TABLE.c.status == IN_FLIGHT)
        .values(status=bindparam("status"), receipt=bindparam("receipt"), delivered_at=bindparam("delivered_at"),
                error_class=bindparam("error_class"), last_error=bindparam("error"),
                next_attempt_at=bindparam("next_attempt_at"), lease_until=None, claim_id=None, updated_at=now)
    )
    history = []
    for r in rows:
        applied = session.execute(settle, {
            **r, "b_id": r["id"], "b_claim": r["claim_id"],
            "delivered_at": now if r["status"] == DELIVERED else None}).rowcount == 1  # type: ignore[attr-defined]
        if r["status"] != DELIVERED or not applied:
            history.append({
                "delivery_id": r["id"], "at": now, "action": "attempt", "outcome": r["status"],
                "attempt": r["attempt"], "worker": worker, "error_class": r["error_class"], "error": r["error"],
                "receipt": r["receipt"], "duration_ms": duration_ms})
    if history:
        session.execute(insert(DeliveryHistory), history)
    return counts


# PostgreSQL: every outcome of a batch and its history rows in one statement and one round trip. The rows
# travel as one JSON document (one parameter, serialised in C), so nothing is built or dumped per column.
# The update applies only where the claim is still ours. A successful attempt that settled its row is
# recorded by the row itself (delivered_at, claimed_by, attempts, receipt: see attempt_on_row); every other
# attempt (failed, dead, or one whose claim was lost meanwhile) gets its history row.
_OUTCOMES_PG = text("""
WITH v AS MATERIALIZED (
    SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS v(
        id bigint, claim_id text, status text, attempt int, receipt text, error_class text, error text,
        next_attempt_at timestamptz)
), settled AS (
    UPDATE deliveries AS d SET
        status = v.status, receipt = v.receipt,
        delivered_at = CASE WHEN v.status = 'delivered' THEN CAST(:now AS timestamptz) END,
        error_class = v.error_class, last_error = v.error, next_attempt_at = v.next_attempt_at,
        lease_until = NULL, claim_id = NULL, updated_at = :now
    FROM v
    WHERE d.id = v.id AND d.claim_id = v.claim_id AND d.status = 'in_flight'
    RETURNING d.id
)
INSERT INTO delivery_history (delivery_id, at, action, outcome, attempt, worker, error_class, error, receipt,
                              duration_ms)
SELECT v.id, :now, 'attempt', v.status, v.attempt, :worker, v.error_class, v.error, v.receipt, :duration_ms
FROM v
WHERE v.status <> 'delivered' OR NOT EXISTS (SELECT 1 FROM settled WHERE settled.id = v.id)
ORDER BY v.id
""")


def attempt_on_row(d: Delivery) -> dict[str, Any] | None:
    """The successful attempt a delivered row records by itself, in the shape of a history entry.

    A successful attempt that settles its row writes no history row of its own: the
    row keeps who delivered it (``claimed_by``), which attempt (``attempts``), when
    (``delivered_at``) and the target's receipt.
    """
    if d.status != DELIVERED or d.delivered_at is None:
        return None
    return {"at": d.delivered_at.isoformat(), "action": "attempt", "outcome": DELIVERED, "attempt": d.attempts,
            "worker": d.claimed_by, "actor": None, "error_class": None, "error": None, "receipt": d.receipt,
            "duration_ms": None}


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
