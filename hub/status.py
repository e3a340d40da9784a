"""What the hub holds, per source and in total: the figures behind `carehub status`.

Besides sources, canonical counts, the outbox and identity (records joined, pairs waiting
for a reviewer, merges): deliveries per target (by
status, with the circuit), each scheduled job's last run, and the scheduler leader.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.store.delivery import LEADER_LEASE, CircuitState, Delivery, JobRun, Lease
from hub.store.delivery import STATUSES as DELIVERY_STATUSES
from hub.store.identity import identity_status
from hub.store.tables import Cursor, Entity, OutboxEvent, PersonIndex, Quarantine, RawRecord, SyncRun


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
    outbox = {"pending": 0, "delivered": 0, "dead": 0}
    for status, n in session.execute(select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status)):
        outbox[status] = n
    return {"sources": dict(sorted(sources.items())), "canonical": canonical, "outbox": outbox,
            "identity": identity_status(session),
            "deliveries": delivery_status(session), "jobs": job_status(session),
            "scheduler": scheduler_leader(session)}


def delivery_status(session: Session) -> dict[str, dict[str, Any]]:
    """Per target: how many deliveries in each status, and the state of its circuit."""
    targets: dict[str, dict[str, Any]] = {}

    def entry(target: str) -> dict[str, Any]:
        return targets.setdefault(target, {"circuit": "closed", **dict.fromkeys(DELIVERY_STATUSES, 0)})

    for target, status, n in session.execute(
        select(Delivery.target, Delivery.status, func.count()).group_by(Delivery.target, Delivery.status)
    ):
        entry(target)[status] = n
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
