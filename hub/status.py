"""What the hub holds, per source and in total: the figures behind `carehub status`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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
    return {"sources": dict(sorted(sources.items())), "canonical": canonical, "outbox": outbox}
