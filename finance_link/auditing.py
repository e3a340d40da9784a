"""Audit rows for what the finance link does outside a request: pushes, faults, files of actuals.

Requests (feed pulls, actuals posted, the finance page) are audited by the hub's
audit middleware; these rows join them on the same trail, as the system user that
acted (``system:finance``), naming line versions and files, never a person's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import String, Table, bindparam, insert, select
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
    """Append one audit row per entry, and its people, in the session's transaction (two statements)."""
    events: list[dict[str, Any]] = []
    subjects: list[dict[str, str]] = []
    for entry in entries:
        ctx = AuditContext(method=entry.method, path=entry.path, client_ip=None, user_id=entry.user_id,
                           purpose="payment", action=entry.action, outcome=entry.outcome, reason=entry.reason)
        ctx.resources.extend(entry.resources)
        row = AuditRow.of(ctx, entry.status)
        event_id = time_ordered_uuid()
        events.append({**row.event, "event_id": event_id})
        subjects += [{"event_id": event_id, "person_id": p} for p in entry.persons]
    if events:
        session.execute(insert(_EVENTS), events)
    if subjects:
        session.execute(_SUBJECTS, subjects)


# A person is tied to their audit row by its event id inside the INSERT (no id read back per row).
_EVENTS = cast(Table, AuditEvent.__table__)
_SUBJECTS = insert(cast(Table, AuditSubject.__table__)).from_select(
    ["audit_id", "person_id"],
    select(_EVENTS.c.id, bindparam("person_id", type_=String)).where(_EVENTS.c.event_id == bindparam("event_id")))
