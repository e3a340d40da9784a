"""What the hub holds, per source and in total: the figures behind `carehub status`.

Besides sources, canonical counts, the outbox and identity (records joined, pairs waiting
for a reviewer, merges): deliveries per target (by
status, with the circuit), each scheduled job's last run, and the scheduler leader.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from hub.store.delivery import LEADER_LEASE, CircuitState, Delivery, DeliveryCursor, JobRun, Lease
from hub.store.delivery import STATUSES as DELIVERY_STATUSES
from hub.store.identity import identity_status
from hub.store.tables import Cursor, Entity, PersonIndex, Quarantine, RawRecord, SyncRun


def hub_status(session: Session) -> dict[str, Any]:
    """Raw, accepted and quarantined per source (raw == accepted + quarantined), canonical counts, outbox."""
    sources: dict[str, dict[str, Any]] = {}
    for source, status, n in session.execute(
        select(RawRecord.source, RawRecord.status, func.count()).group_by(RawRecord.source, RawRecord.status)
    ):
        entry = sources.setdefault(source, {"raw": 0, "accepted": 0, "quarantined": 0, "cursor": {}})
        entry["raw"] += n
        entry[status] = entry.get(status, 0) + n
    for source, stream, value in session.execute(select(Cursor.source, Cursor.stream, Cursor.value)):
        sources.setdefault(source, {"raw": 0, "accepted": 0, "quarantined": 0, "cursor": {}})
        sources[source]["cursor"][stream] = value
    for source, n in session.execute(
        select(Quarantine.source, func.count()).where(Quarantine.status == "open").group_by(Quarantine.source)
    ):
        sources.setdefault(source, {"raw": 0, "accepted": 0, "quarantined": 0, "cursor": {}})["open_quarantine"] = n
    last_runs = session.execute(
        select(SyncRun.source, SyncRun.outcome, SyncRun.started_at, SyncRun.finished_at)
        .where(SyncRun.id.in_(select(func.max(SyncRun.id)).group_by(SyncRun.source)))
    )
    for source, outcome, started, finished in last_runs:
        sources.setdefault(source, {"raw": 0, "accepted": 0, "quarantined": 0, "cursor": {}})["last_sync"] = {
            "outcome": outcome, "started": started.isoformat(),
            "finished": finished.isoformat() if finished else None,
        }
    canonical = {
        etype: n for etype, n in session.execute(
            select(Entity.entity_type, func.count()).group_by(Entity.entity_type).order_by(Entity.entity_type)
        )
    }
    merged = session.scalar(select(func.count()).select_from(PersonIndex).where(PersonIndex.status == "merged"))
    if "Person" in canonical:
        canonical["Person"] -= merged or 0
    return {"sources": dict(sorted(sources.items())), "canonical": canonical, "outbox": outbox_status(session),
            "identity": identity_status(session),
            "deliveries": delivery_status(session), "jobs": job_status(session),
            "scheduler": scheduler_leader(session)}


# An event is pending while some target's cursor has not passed it or it has an unsettled delivery row, dead
# when it has a dead letter (not replayed) and nothing pending, delivered otherwise (every target it went to
# has it, or no target wanted it). Every cursor counts: a target's lanes are read whatever it subscribes to.
_OUTBOX_STATUS = text("""
WITH m AS (SELECT lane, min(position) AS pos FROM delivery_cursors GROUP BY lane),
s AS (
    SELECT CASE WHEN o.id > COALESCE(m.pos, 0) OR EXISTS (
                    SELECT 1 FROM deliveries AS d WHERE d.outbox_id = o.id
                    AND d.status IN ('pending', 'failed', 'in_flight')) THEN 'pending'
                WHEN EXISTS (
                    SELECT 1 FROM deliveries AS d WHERE d.outbox_id = o.id
                    AND d.status = 'dead' AND d.replayed_by IS NULL) THEN 'dead'
                ELSE 'delivered' END AS status
    FROM outbox AS o LEFT JOIN m ON m.lane = o.lane
)
SELECT status, count(*) FROM s GROUP BY status
""")


def outbox_status(session: Session) -> dict[str, int]:
    """How many outbox events are pending, delivered (to every target that wants them) and dead."""
    counts = {"pending": 0, "delivered": 0, "dead": 0}
    for status, n in session.execute(_OUTBOX_STATUS):
        counts[status] = int(n)
    return counts


def delivery_status(session: Session) -> dict[str, dict[str, Any]]:
    """Per target: how many deliveries in each status, its lanes, and the state of its circuit.

    ``delivered`` counts the events delivered through the lane cursors and the delivery rows delivered
    (retries, events held behind them, replays); the other statuses are those of delivery rows.
    ``lanes_leased`` is how many lanes a worker holds now, ``lanes_lost`` how often a holder vanished.
    """
    targets: dict[str, dict[str, Any]] = {}

    def entry(target: str) -> dict[str, Any]:
        return targets.setdefault(target, {"circuit": "closed", **dict.fromkeys(DELIVERY_STATUSES, 0),
                                           "lanes_leased": 0, "lanes_lost": 0})

    for target, delivered, leased, lost in session.execute(
        select(DeliveryCursor.target, func.sum(DeliveryCursor.delivered), func.count(DeliveryCursor.holder),
               func.sum(DeliveryCursor.times_lost)).group_by(DeliveryCursor.target)
    ):
        e = entry(target)
        e["delivered"] += int(delivered or 0)
        e["lanes_leased"], e["lanes_lost"] = int(leased or 0), int(lost or 0)

    for target, status, n in session.execute(
        select(Delivery.target, Delivery.status, func.count()).group_by(Delivery.target, Delivery.status)
    ):
        entry(target)[status] += n
    for target, state, failures, opened in session.execute(
        select(CircuitState.target, CircuitState.state, CircuitState.consecutive_failures,
               CircuitState.times_opened)
    ):
        e = entry(target)
        e["circuit"], e["consecutive_failures"], e["times_opened"] = state, failures, opened
    return dict(sorted(targets.items()))


def job_status(session: Session) -> dict[str, dict[str, Any]]:
    """Per scheduled job: its last run's start, end, duration, outcome, error and node."""
    last = select(func.max(JobRun.id)).group_by(JobRun.job)
    return {
        run.job: {"outcome": run.outcome, "started": run.started_at.isoformat(),
                  "finished": run.finished_at.isoformat() if run.finished_at else None,
                  "duration_ms": run.duration_ms, "node": run.node, "error": run.error, "detail": run.detail}
        for run in session.scalars(select(JobRun).where(JobRun.id.in_(last)).order_by(JobRun.job))
    }


def scheduler_leader(session: Session) -> dict[str, Any] | None:
    """Which worker leads the scheduler, as it last said (None before any worker ran)."""
    lease = session.get(Lease, LEADER_LEASE)
    if lease is None:
        return None
    return {"holder": lease.holder, "since": lease.acquired_at.isoformat(),
            "heartbeat": lease.heartbeat_at.isoformat(), "expires": lease.expires_at.isoformat()}
