"""Auditor routes: the break-glass review queue. (The trail itself is read as FHIR AuditEvent.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hub.api.deps import AuditDep, AuditorUser, StoreDep
from hub.api.params import RowId
from hub.api.schemas import BreakGlassEntry, ReviewIn
from hub.audit import pending_reviews, review_break_glass, subjects_of
from hub.store.audit import AuditEvent

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("/break-glass", response_model=list[BreakGlassEntry], summary="Break glasses awaiting review")
def break_glass_queue(session: StoreDep, caller: AuditorUser, audit: AuditDep,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[BreakGlassEntry]:
    """Every break glass not yet reviewed, oldest first, with who, why and whose record."""
    audit.action = "search"
    rows = pending_reviews(session, limit)
    subjects = subjects_of(session, [e.id for _, e in rows])
    return [BreakGlassEntry(id=r.id, audit_event=e.event_id, recorded=e.recorded, user_id=e.user_id, role=e.role,
                            team=e.team, reason=r.reason, persons=subjects[e.id], status=r.status)
            for r, e in rows]


@router.post("/break-glass/{review_id}", response_model=BreakGlassEntry, summary="Review a break glass")
def review(review_id: RowId, body: ReviewIn, session: StoreDep, caller: AuditorUser, audit: AuditDep
           ) -> BreakGlassEntry:
    """Mark a break glass justified, or referred for follow-up."""
    r = review_break_glass(session, review_id, caller.user_id, body.decision, body.note,
                           reviewer_issuer=caller.issuer)
    e = session.get(AuditEvent, r.audit_id)
    assert e is not None
    persons = subjects_of(session, [e.id])[e.id]
    for pid in persons:
        audit.touch_person(pid)
    return BreakGlassEntry(id=r.id, audit_event=e.event_id, recorded=e.recorded, user_id=e.user_id, role=e.role,
                           team=e.team, reason=r.reason, persons=persons, status=r.status)
