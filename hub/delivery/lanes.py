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
goes through :func:`hub.store.writer.append_events`, which holds
:func:`hub.delivery.fanout.hold_outbox_order` while inserting, so a cursor
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
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from hub.contract import ChangeEvent
from hub.delivery.config import WILDCARD, DeliveryConfig, RetryPolicy
from hub.delivery.fanout import insert_new
from hub.delivery.queue import Outcome, backoff_seconds, relax_commit
from hub.store.bulk import DriverStatements
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


class Runner(Protocol):
    """Runs the lane statements (written with ``:name`` parameters) and commits each at once."""

    def all(self, sql: str, params: dict[str, Any]) -> list[Any]:
        """The statement's rows."""
        ...

    def count(self, sql: str, params: dict[str, Any]) -> int:
        """The statement's row count."""
        ...


class SessionRunner:
    """Lane statements in a session's transaction (SQLite; the caller commits)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def all(self, sql: str, params: dict[str, Any]) -> list[Any]:
        """The statement's rows (times typed as the store keeps them)."""
        return list(self.session.execute(_typed(sql), params).all())

    def count(self, sql: str, params: dict[str, Any]) -> int:
        """The statement's row count."""
        return int(self.session.execute(_typed(sql), params).rowcount)  # type: ignore[attr-defined]


_TYPED: dict[str, Any] = {}


def _typed(sql: str) -> Any:
    statement = _TYPED.get(sql)
    if statement is None:
        statement = _TYPED[sql] = text(sql).columns(created_at=UtcDateTime())
    return statement


# PostgreSQL: the settings of the loop's own connection for lane statements. Plans made once and kept (the
# default mode; the loop's engine forces custom plans for the delivery rows' head-of-key claim): every lane
# statement is an index lookup by lane and id, whatever the statistics say, and planning them per batch cost
# as much as running them. Event times arrive in UTC, as the store's own types give them.
_PG_SETUP = ("SET plan_cache_mode = auto", "SET timezone = 'UTC'")


def pg_runner(engine: Engine) -> DriverStatements:
    """PostgreSQL: lane statements on one raw autocommit connection of a loop's own engine (commits relaxed),
    three statements a batch (see :class:`hub.store.bulk.DriverStatements`)."""
    return DriverStatements(engine, _PG_SETUP)


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


def wanted(config: DeliveryConfig, target: str, alias: str = "o") -> tuple[str, dict[str, str]]:
    """The subscriptions of ``target`` as an SQL condition on outbox rows, and its parameters (the configured
    entity types and kinds travel as bound values, never in the SQL text)."""
    arms: list[str] = []
    params: dict[str, str] = {}

    def one_of(column: str, values: list[str], prefix: str) -> str:
        names = [f"{prefix}_{n}" for n in range(len(values))]
        params.update(zip(names, values, strict=True))
        return f"{alias}.{column} IN ({', '.join(':' + name for name in names)})"

    for number, sub in enumerate(s for s in config.subscriptions if s.target == target):
        conds = ["1 = 1"]
        if WILDCARD not in sub.entity_types:
            conds.append(one_of("entity_type", sub.entity_types, f"wanted_{number}_type"))
        if WILDCARD not in sub.kinds:
            conds.append(one_of("kind", sub.kinds, f"wanted_{number}_kind"))
        arms.append("(" + " AND ".join(conds) + ")")
    return " OR ".join(arms) or "1 = 0", params


# The lease: the least recently served free lane of the target that has events after its cursor, taken only
# while the target's circuit is closed (otherwise the loop asks the circuit first). On PostgreSQL one
# statement, atomic by itself (SKIP LOCKED: workers never wait on each other's lanes).
_LEASE_PICK = """
    SELECT c.lane, c.position, c.holder FROM delivery_cursors AS c
    WHERE c.target = :target AND (c.lease_until IS NULL OR c.lease_until < :now)
      AND EXISTS (SELECT 1 FROM outbox AS x WHERE x.lane = c.lane AND x.id > c.position){closed}
    ORDER BY c.served_at LIMIT 1
"""
_CIRCUIT_CLOSED = """
      AND NOT EXISTS (SELECT 1 FROM delivery_circuits AS k WHERE k.target = :target AND k.state <> 'closed')"""
_LEASE_SET = """
    holder = :worker, claim_id = :claim_id, lease_until = :lease_until, served_at = :now,
    times_lost = delivery_cursors.times_lost + CASE WHEN {p}.holder IS NULL THEN 0 ELSE 1 END,
    lost_by = COALESCE({p}.holder, delivery_cursors.lost_by)
"""
_LEASE_PG = """
WITH p AS ({pick} FOR UPDATE OF c SKIP LOCKED)
UPDATE delivery_cursors SET {set}
FROM p WHERE delivery_cursors.target = :target AND delivery_cursors.lane = p.lane
RETURNING delivery_cursors.lane, delivery_cursors.position
"""
_LEASE_OTHER = f"""
UPDATE delivery_cursors SET {_LEASE_SET.format(p="delivery_cursors")}
WHERE target = :target AND lane = :lane AND position = :position
"""
# (postgres, probe) -> the lease statement; a probe is taken while the circuit is half open.
_LEASES = {
    (pg, probe): (_LEASE_PG.format(pick=_LEASE_PICK.format(closed="" if probe else _CIRCUIT_CLOSED),
                                   set=_LEASE_SET.format(p="p"))
                  if pg else _LEASE_PICK.format(closed="" if probe else _CIRCUIT_CLOSED))
    for pg in (True, False) for probe in (True, False)
}


def lease_lane(run: Runner, target: str, worker: str, lease_seconds: float, *, probe: bool = False,
               postgres: bool = True) -> tuple[int, int, str] | None:
    """Lease a lane of ``target`` that has new events: (lane, position, claim id), or None.

    Only while the circuit is closed, unless ``probe`` (this worker holds the half-open circuit's probe).
    """
    now = utcnow()
    claim_id = uuid.uuid4().hex
    params = {"target": target, "now": now, "worker": worker, "claim_id": claim_id,
              "lease_until": now + timedelta(seconds=lease_seconds)}
    found = run.all(_LEASES[postgres, probe], params)
    if not found:
        return None
    lane, position = found[0][0], found[0][1]
    if not postgres:
        run.count(_LEASE_OTHER, {**params, "lane": lane, "position": position})
    return lane, position, claim_id


# The read, after the lease: the lane's next events the target wants, each flagged held when its key has an
# unsettled delivery row, and the lane's last event now (to move the cursor past events the target does not
# want). A plain indexed read: the cut at a key's second event and the cursor's next place are worked out by
# the loop (:func:`read_lane`), which keeps the statement cheap to plan.
_READ = """
SELECT t.top, o.id, o.event_id, o.entity_type, o.entity_id, o.person_id, o.kind, o.version, o.payload,
       o.created_at, o.source, o.okey, o.held
FROM (SELECT max(m.id) AS top FROM outbox AS m WHERE m.lane = :lane) AS t
LEFT JOIN (
    SELECT o.id, o.event_id, o.entity_type, o.entity_id, o.person_id, o.kind, o.version, o.payload,
           o.created_at, o.source, o.{key} AS okey,
           EXISTS (SELECT 1 FROM deliveries AS h
                   WHERE h.target = :target AND h.ordering_key = o.{key}
                     AND h.status IN ('pending', 'failed', 'in_flight', 'dead')
                     AND (h.status <> 'dead' OR h.replayed_by IS NULL)) AS held
    FROM outbox AS o
    WHERE o.lane = :lane AND o.id > :position AND ({wanted})
    ORDER BY o.id LIMIT :limit
) AS o ON 1 = 1
ORDER BY o.id
"""

_READS: dict[tuple[int, str], tuple[DeliveryConfig, str, dict[str, str]]] = {}


def _read_sql(config: DeliveryConfig, target: str) -> tuple[str, dict[str, str]]:
    cached = _READS.get((id(config), target))
    if cached is not None and cached[0] is config:
        return cached[1], cached[2]
    condition, params = wanted(config, target)
    sql = _READ.format(key=KEY_COLUMN[config.targets[target].ordering], wanted=condition)
    if len(_READS) > 64:
        _READS.clear()
    _READS[(id(config), target)] = (config, sql, params)
    return sql, params


def read_lane(run: Runner, config: DeliveryConfig, target: str, lane: int, position: int, claim_id: str,
              limit: int) -> LaneBatch:
    """The events of a leased lane to push now, and where its cursor goes after them.

    The batch ends before the first event whose ordering key it already carries (one event per key per
    push). The cursor goes past the last event taken or, when the lane had no more than these (fewer than
    ``limit``, no repeat), past every event the lane holds now, those the target does not want included:
    later commits get higher ids (outbox order), so nothing can appear behind that point.
    """
    sql, wanted_params = _read_sql(config, target)
    rows = run.all(sql, {**wanted_params, "target": target, "lane": lane, "position": position, "limit": limit})
    loads = orjson.loads
    keys: set[str] = set()
    events: list[LaneEvent] = []
    cut = False
    for (_, id_, event_id, entity_type, entity_id, person, kind, version, payload, created_at, source, key,
         held) in rows:
        if id_ is None:
            break
        if key in keys:
            cut = True
            break
        keys.add(key)
        events.append(LaneEvent(ChangeEvent(event_id, entity_type, entity_id, person, kind, version, loads(payload),
                                            created_at, source, key, id_), bool(held)))
    if cut or len(events) >= limit:
        upto = events[-1].event.sequence or 0
    else:
        upto = max(int(rows[0][0] or 0), position) if rows else position
    return LaneBatch(target, lane, claim_id, upto, events)


_ADVANCE = """
UPDATE delivery_cursors SET position = :upto, holder = NULL, claim_id = NULL, lease_until = NULL,
    delivered = delivery_cursors.delivered + :delivered, updated_at = :now
WHERE target = :target AND lane = :lane AND claim_id = :claim_id
"""
# A batch that went ends a run of failed batches: the circuit's count starts again (written only when it is
# not already 0, so the happy path reads the circuit's row and writes nothing there).
_RESET_FAILURES = """
UPDATE delivery_circuits SET consecutive_failures = 0, updated_at = :now
WHERE target = :target AND state = 'closed' AND consecutive_failures > 0
"""
_ADVANCE_PG = f"WITH reset AS ({_RESET_FAILURES}) {_ADVANCE}"


def advance(run: Runner, batch: LaneBatch, delivered: int, *, postgres: bool = True) -> bool:
    """Move the cursor past the batch and give the lane back; False if the lease was lost (nothing moved).

    When events were delivered, a closed circuit's count of consecutive failures starts again.
    """
    params = {"upto": batch.upto, "delivered": delivered, "now": utcnow(), "target": batch.target,
              "lane": batch.lane, "claim_id": batch.claim_id}
    if postgres and delivered:
        return bool(run.count(_ADVANCE_PG, params))
    if delivered:
        run.count(_RESET_FAILURES, params)
    return bool(run.count(_ADVANCE, params))


def release(run: Runner, batch: LaneBatch) -> None:
    """Give the lane back without moving its cursor (the loop is stopping before it pushed)."""
    run.count("UPDATE delivery_cursors SET holder = NULL, claim_id = NULL, lease_until = NULL "
              "WHERE target = :target AND lane = :lane AND claim_id = :claim_id",
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
    if not advance(SessionRunner(session), batch, counts[DELIVERED],
                   postgres=session.get_bind().dialect.name == "postgresql"):
        return None  # the lease ended and another worker has the lane: it reads these events again
    session.add_all([d for d, _ in rows])
    session.flush()
    session.add_all([
        DeliveryHistory(delivery_id=d.id, at=now, action="attempt", outcome=d.status, attempt=1, worker=worker,
                        error_class=o.error_class, error=d.last_error, duration_ms=duration_ms)
        for d, o in rows if o is not None])
    return counts

