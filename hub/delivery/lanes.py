"""The happy path of delivery: each target reads the outbox lane by lane behind a cursor.

Every outbox event travels in the lane of its ordering key (``outbox.lane``, set
at insert from the key). Each (target, lane) has a cursor row. A worker leases
one lane of a target at a time, reads the lane's next events after the cursor
that the target subscribes to, pushes them, and moves the cursor in one
statement: **no row is written per event on success**. A person is in exactly
one lane and a lane is read in order by one holder at a time, so per-person
order holds, and a batch carries at most one event per ordering key (it ends
before a key's second event), so a refused event never has a later event of
its key beside it in the same push.

**Exceptions by rows.** An event the target did not accept (a transient or
permanent failure, by error class) becomes a delivery row (``failed`` with its
backoff, or ``dead``) in the same transaction that moves the cursor past it;
from then on the row machinery of :mod:`hub.delivery.queue` retries it, and
operators see, retry, cancel and replay it. An event whose ordering key still
has an unsettled row (pending, failed, in flight, or dead and not replayed) is
*held*: it becomes a pending row behind that head instead of being pushed, so a
person's later change never overtakes one that failed.

**Outbox order.** Outbox ids rise in commit order: every writer of outbox rows
holds :func:`hub.delivery.fanout.hold_outbox_order` while inserting, so a cursor
never passes an id whose transaction is still open.

**Leases.** The lane lease is taken in its own statement (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, then committed), and the events are read in the next,
whose snapshot therefore sees every row the lane's previous holder wrote. A
worker that dies holding a lane leaves its lease to run out; the next worker
to take the lane reads the same events again (the target's idempotency key
makes that harmless) and counts the loss on the cursor (``times_lost``,
``lost_by``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from hub.contract import ChangeEvent
from hub.delivery.config import WILDCARD, DeliveryConfig, RetryPolicy
from hub.delivery.fanout import insert_new
from hub.delivery.queue import Outcome, backoff_seconds, relax_commit
from hub.store.delivery import DEAD, DELIVERED, FAILED, PENDING, Delivery, DeliveryCursor, DeliveryHistory
from hub.store.tables import OUTBOX_LANES, OutboxEvent, UtcDateTime, utcnow

# Which outbox column orders a target's deliveries (TargetSettings.ordering).
KEY_COLUMN = {"person": "ordering_key", "entity": "entity_id", "none": "event_id"}


@dataclass(frozen=True, slots=True)
class LaneEvent:
    """An event of a leased lane: pushed, or (``held``) queued behind its key's unsettled row."""

    event: ChangeEvent
    held: bool


@dataclass(frozen=True, slots=True)
class LaneBatch:
    """A lane this worker leased for a target, the events it read, and where the cursor goes after them."""

    target: str
    lane: int
    claim_id: str
    upto: int
    events: list[LaneEvent]


def start_position(session: Session) -> int:
    """Where a new target's cursors start: after the events routed before lanes existed (0 on a new store).

    Those events have their delivery rows (migration 0009_delivery_lanes); every later event is read by
    the cursors, so a target added later receives every event written since lanes began.
    """
    return int(session.scalar(select(func.max(OutboxEvent.id)).where(OutboxEvent.status != PENDING)) or 0)


def ensure_cursors(session: Session, targets: Sequence[str]) -> None:
    """Give every (target, lane) a cursor row; rows that exist are kept (several workers may race here)."""
    have = {(t, lane) for t, lane in session.execute(
        select(DeliveryCursor.target, DeliveryCursor.lane).where(DeliveryCursor.target.in_(targets)))}
    missing = [(t, lane) for t in targets for lane in range(OUTBOX_LANES) if (t, lane) not in have]
    if not missing:
        return
    now, position = utcnow(), start_position(session)
    insert_new(session, DeliveryCursor, [
        {"target": t, "lane": lane, "position": position, "served_at": now, "delivered": 0, "times_lost": 0,
         "updated_at": now} for t, lane in missing])


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def wanted_sql(config: DeliveryConfig, target: str, alias: str = "o") -> str:
    """The subscriptions of ``target`` as an SQL condition on outbox rows (config values, quoted)."""
    arms = []
    for sub in config.subscriptions:
        if sub.target != target:
            continue
        conds = ["1 = 1"]
        if WILDCARD not in sub.entity_types:
            conds.append(f"{alias}.entity_type IN ({', '.join(map(_quote, sub.entity_types))})")
        if WILDCARD not in sub.kinds:
            conds.append(f"{alias}.kind IN ({', '.join(map(_quote, sub.kinds))})")
        arms.append("(" + " AND ".join(conds) + ")")
    return " OR ".join(arms) or "1 = 0"


# The lease: the least recently served free lane of the target that has events after its cursor. On
# PostgreSQL one statement, atomic by itself (SKIP LOCKED: workers never wait on each other's lanes).
_LEASE_PICK = """
    SELECT c.lane, c.position, c.holder FROM delivery_cursors AS c
    WHERE c.target = :target AND (c.lease_until IS NULL OR c.lease_until < :now)
      AND EXISTS (SELECT 1 FROM outbox AS x WHERE x.lane = c.lane AND x.id > c.position)
    ORDER BY c.served_at LIMIT 1
"""
_LEASE_SET = """
    holder = :worker, claim_id = :claim_id, lease_until = :lease_until, served_at = :now, claim_upto = NULL,
    times_lost = delivery_cursors.times_lost + CASE WHEN {p}.holder IS NULL THEN 0 ELSE 1 END,
    lost_by = COALESCE({p}.holder, delivery_cursors.lost_by)
"""
_LEASE_PG = text(f"""
WITH p AS ({_LEASE_PICK} FOR UPDATE SKIP LOCKED)
UPDATE delivery_cursors SET {_LEASE_SET.format(p="p")}
FROM p WHERE delivery_cursors.target = :target AND delivery_cursors.lane = p.lane
RETURNING delivery_cursors.lane, delivery_cursors.position
""")
_LEASE_OTHER = text(f"""
UPDATE delivery_cursors SET {_LEASE_SET.format(p="delivery_cursors")}
WHERE target = :target AND lane = :lane AND position = :position
""")


def lease_lane(session: Session, target: str, worker: str, lease_seconds: float) -> tuple[int, int, str] | None:
    """Lease a lane of ``target`` that has new events: (lane, position, claim id), or None. Commit it at once."""
    now = utcnow()
    claim_id = uuid.uuid4().hex
    params = {"target": target, "now": now, "worker": worker, "claim_id": claim_id,
              "lease_until": now + timedelta(seconds=lease_seconds)}
    relax_commit(session)
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(_LEASE_PG, params).first()
        return (row.lane, row.position, claim_id) if row else None
    picked = session.execute(text(_LEASE_PICK), params).first()
    if picked is None:
        return None
    session.execute(_LEASE_OTHER, {**params, "lane": picked.lane, "position": picked.position})
    return picked.lane, picked.position, claim_id


# The read, after the lease: the lane's next events the target wants, cut before the first repeat of an
# ordering key (one event per key per push), each flagged held when its key has an unsettled delivery row;
# and where the cursor will go: past the last event taken, or, when the lane had no more than these (fewer
# than the limit, no repeat), past every event the lane holds now (events the target does not want
# included). Later commits get higher ids (outbox order), so nothing behind that point can appear later.
_READ = """
WITH e AS MATERIALIZED (
    SELECT o.id, o.event_id, o.entity_type, o.entity_id, o.person_id, o.kind, o.version, o.payload,
           o.created_at, o.source, o.{key} AS okey,
           row_number() OVER (PARTITION BY o.{key} ORDER BY o.id) AS rn
    FROM (SELECT * FROM outbox AS o WHERE o.lane = :lane AND o.id > :position AND ({wanted})
          ORDER BY o.id LIMIT :limit) AS o
), b AS MATERIALIZED (
    SELECT * FROM e WHERE e.id < COALESCE((SELECT min(r.id) FROM e AS r WHERE r.rn > 1), :no_cut)
), top AS (
    SELECT CASE WHEN (SELECT count(*) FROM e) < :limit AND NOT EXISTS (SELECT 1 FROM e AS r WHERE r.rn > 1)
                THEN (SELECT max(m.id) FROM outbox AS m WHERE m.lane = :lane)
                ELSE (SELECT max(b.id) FROM b) END AS upto
){mark}
SELECT {upto} AS upto, b.id, b.event_id, b.entity_type, b.entity_id, b.person_id, b.kind, b.version, b.payload,
       b.created_at, b.source, b.okey,
       EXISTS (SELECT 1 FROM deliveries AS h
               WHERE h.target = :target AND h.ordering_key = b.okey
                 AND h.status IN ('pending', 'failed', 'in_flight', 'dead')
                 AND (h.status <> 'dead' OR h.replayed_by IS NULL)) AS held
FROM top LEFT JOIN b ON 1 = 1
ORDER BY b.id
"""
# PostgreSQL notes the batch's end on the cursor in the same statement (for operators: the events in flight).
_MARK_PG = """, mark AS (
    UPDATE delivery_cursors SET claim_upto = (SELECT upto FROM top)
    WHERE target = :target AND lane = :lane AND claim_id = :claim_id
    RETURNING claim_upto
)"""
_NO_CUT = 2**62

_READS: dict[tuple[int, str, str], tuple[DeliveryConfig, Any]] = {}


def _read_statement(config: DeliveryConfig, target: str, dialect: str) -> Any:
    cached = _READS.get((id(config), target, dialect))
    if cached is not None and cached[0] is config:
        return cached[1]
    pg = dialect == "postgresql"
    sql = _READ.format(key=KEY_COLUMN[config.targets[target].ordering], wanted=wanted_sql(config, target),
                       mark=_MARK_PG if pg else "", upto="(SELECT claim_upto FROM mark)" if pg else "top.upto")
    if not pg:
        sql = sql.replace(" AS MATERIALIZED (", " AS (")
    statement = text(sql).columns(created_at=UtcDateTime())
    if len(_READS) > 64:
        _READS.clear()
    _READS[(id(config), target, dialect)] = (config, statement)
    return statement


def read_lane(session: Session, config: DeliveryConfig, target: str, lane: int, position: int, claim_id: str,
              limit: int) -> LaneBatch | None:
    """The events of a leased lane to push now; None if the lease was lost meanwhile."""
    dialect = session.get_bind().dialect.name
    rows = session.execute(_read_statement(config, target, dialect), {
        "target": target, "lane": lane, "position": position, "limit": limit, "claim_id": claim_id,
        "no_cut": _NO_CUT}).all()
    if not rows or rows[0].upto is None:
        return None
    upto = int(rows[0].upto)
    if dialect != "postgresql" and not session.execute(text(
            "UPDATE delivery_cursors SET claim_upto = :upto WHERE target = :target AND lane = :lane "
            "AND claim_id = :claim_id"), {"upto": upto, "target": target, "lane": lane,
                                          "claim_id": claim_id}).rowcount:  # type: ignore[attr-defined]
        return None
    loads = orjson.loads
    events = [
        LaneEvent(ChangeEvent(
            event_id=event_id, entity_type=entity_type, entity_id=entity_id, person_id=person, kind=kind,
            version=version, payload=loads(payload), created_at=created_at, source=source, ordering_key=key,
            sequence=id_,
        ), bool(held))
        for (_, id_, event_id, entity_type, entity_id, person, kind, version, payload, created_at, source, key,
             held) in rows if id_ is not None
    ]
    return LaneBatch(target, lane, claim_id, upto, events)


_ADVANCE = text("""
UPDATE delivery_cursors SET position = :upto, holder = NULL, claim_id = NULL, lease_until = NULL,
    claim_upto = NULL, delivered = delivery_cursors.delivered + :delivered, updated_at = :now
WHERE target = :target AND lane = :lane AND claim_id = :claim_id
""")


def advance(session: Session, batch: LaneBatch, delivered: int) -> bool:
    """Move the cursor past the batch and give the lane back; False if the lease was lost (nothing moved)."""
    relax_commit(session)
    return bool(session.execute(_ADVANCE, {
        "upto": batch.upto, "delivered": delivered, "now": utcnow(), "target": batch.target, "lane": batch.lane,
        "claim_id": batch.claim_id}).rowcount)  # type: ignore[attr-defined]


def release(session: Session, batch: LaneBatch) -> None:
    """Give the lane back without moving its cursor (the loop is stopping before it pushed)."""
    session.execute(text("UPDATE delivery_cursors SET holder = NULL, claim_id = NULL, lease_until = NULL, "
                         "claim_upto = NULL WHERE target = :target AND lane = :lane AND claim_id = :claim_id"),
                    {"target": batch.target, "lane": batch.lane, "claim_id": batch.claim_id})


def settle_status(policy: RetryPolicy, attempt: int, outcome: Outcome, now: datetime) -> tuple[str, str | None,
                                                                                                  datetime]:
    """A not-delivered attempt's row status, error text and next attempt: failed with backoff, or dead."""
    if outcome.result == "permanent":
        return DEAD, outcome.error, now
    if attempt >= policy.max_attempts:
        return DEAD, f"retries exhausted after {attempt} attempts: {outcome.error}", now
    return FAILED, outcome.error, now + timedelta(seconds=backoff_seconds(policy, attempt))


def record_exceptions(session: Session, batch: LaneBatch, outcomes: dict[int, Outcome], policy: RetryPolicy,
                      worker: str, duration_ms: int) -> dict[str, int] | None:
    """Move the cursor past a batch that did not all go, writing rows for what did not; None if lease lost.

    ``outcomes`` maps the sequence of each pushed event to its outcome. Held events become pending rows
    (behind their key's head), failed ones ``failed`` rows with their backoff, refused ones dead letters;
    each failed or dead attempt has its history row. One transaction: the cursor moves exactly when the
    rows exist.
    """
    now = utcnow()
    counts = {DELIVERED: 0, FAILED: 0, DEAD: 0, PENDING: 0}
    rows: list[tuple[Delivery, Outcome | None]] = []
    for le in batch.events:
        e = le.event
        o = None if le.held else outcomes[e.sequence or 0]
        if o is not None and o.result == "delivered":
            counts[DELIVERED] += 1
            continue
        d = Delivery(outbox_id=e.sequence, event_id=e.event_id, target=batch.target, ordering_key=e.ordering_key,
                     generation=0, status=PENDING, attempts=0, next_attempt_at=now, created_at=now, updated_at=now)
        if o is not None:
            d.status, d.last_error, d.next_attempt_at = settle_status(policy, 1, o, now)
            d.attempts, d.error_class, d.claimed_by = 1, o.error_class, worker
        counts[d.status] += 1
        rows.append((d, o))
    relax_commit(session)
    if not advance(session, batch, counts[DELIVERED]):
        return None  # the lease ended and another worker has the lane: it reads these events again
    session.add_all([d for d, _ in rows])
    session.flush()
    session.add_all([
        DeliveryHistory(delivery_id=d.id, at=now, action="attempt", outcome=d.status, attempt=1, worker=worker,
                        error_class=o.error_class, error=d.last_error, duration_ms=duration_ms)
        for d, o in rows if o is not None])
    return counts

