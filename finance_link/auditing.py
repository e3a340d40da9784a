"""Audit rows for what the finance link does outside a request: pushes, faults, files of actuals.

Requests (feed pulls, actuals posted, the finance page) are audited by the hub's
audit middleware; these rows join them on the same trail, as the system user that
acted (``system:finance``), naming line versions and files, never a person's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hub.audit import AuditContext, AuditRow, time_ordered_uuid
from hub.store.audit import AuditEvent, AuditSubject


@dataclass(frozen=True, slots=True)
class SystemAudit:
    """One thing the link did: how (SOAP, FILE), where, as whom, the action, outcome, reason and resources."""

    method: str
    path: str
    user_id: str
    action: str
    outcome: str
    reason: str | None
    resources: list[str]
    persons: list[str] = field(default_factory=list)
    status: int = 200


def audit_system(session: Session, entries: Sequence[SystemAudit]) -> None:
    """Append one audit row per entry (and its people) in the session's transaction."""
    for entry in entries:
        ctx = AuditContext(method=entry.method, path=entry.path, client_ip=None, user_id=entry.user_id,
                           purpose="payment", action=entry.action, outcome=entry.outcome, reason=entry.reason)
        ctx.resources.extend(entry.resources)
        ctx.persons.extend(entry.persons)
        row = AuditRow.of(ctx, entry.status)
        event_id = time_ordered_uuid()
        session.execute(insert(AuditEvent), [{**row.event, "event_id": event_id}])
        if row.persons:
            audit_id = session.scalar(select(AuditEvent.id).where(AuditEvent.event_id == event_id))
            session.execute(insert(AuditSubject), [{"audit_id": audit_id, "person_id": p} for p in row.persons])
