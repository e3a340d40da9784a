"""Records managers' API: documents, orphans with suggested people, links made and ended, retention due.

Every route needs the role ``records_manager`` and is audited (who, role, purpose, which people and
documents, outcome); links keep who made or ended them, when and why. Routes parse, authorise, call one
function of :mod:`edrms.service` or :mod:`edrms.records`, and shape the answer.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from edrms.records import link_document, unlink_document
from edrms.retention import Schedule
from edrms.service import (
    link_json,
    list_documents,
    list_orphans,
    require_person,
    retention_report,
    show_document,
    visible_report,
)
from hub.access.rules import Caller
from hub.api.deps import AuditDep, PolicyDep, StoreDep, require_role
from hub.api.params import AfterId, RowId
from hub.audit import AuditContext

router = APIRouter(prefix="/api/documents", tags=["documents"])
RecordsManager = Annotated[Caller, Depends(require_role("records_manager"))]


def schedule_of(request: Request) -> Schedule:
    """The retention schedule, read once per application."""
    state = request.app.state
    schedule: Schedule | None = getattr(state, "retention_schedule", None)
    if schedule is None:
        schedule = Schedule.from_settings(state.settings)
        state.retention_schedule = schedule
    return schedule


ScheduleDep = Annotated[Schedule, Depends(schedule_of)]


class LinkRequest(BaseModel):
    """Link a document to a person (and optionally one of their cases), saying why."""

    person_id: str = Field(min_length=1, max_length=36)
    episode_id: str | None = Field(default=None, max_length=36, description="The case, if the document is a case's.")
    reason: str = Field(min_length=5, max_length=1000, description="Why this document is this person's.")


class UnlinkRequest(BaseModel):
    """Why a link is being removed."""

    reason: str = Field(min_length=5, max_length=1000)


def _touch(audit: AuditContext, action: str, body: dict[str, Any]) -> None:
    audit.action = action
    for doc in body.get("documents", [body]):
        if "id" in doc:
            audit.touch("DocumentReference", str(doc["id"]))
        if doc.get("person_id"):
            audit.touch_person(doc["person_id"])


@router.get("", summary="Documents, or the orphans with suggested people")
def get_documents(
    session: StoreDep, policy: PolicyDep, caller: RecordsManager, audit: AuditDep,
    orphans: Annotated[bool, Query(description="Only documents linked to no one.")] = False,
    person_id: Annotated[str | None, Query(max_length=36, description="Only this person's documents.")] = None,
    suggest: Annotated[bool, Query(description="With orphans: people the document may be about.")] = True,
    after: AfterId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Orphans (``orphans=true``) with suggestions, or documents (one person's when ``person_id`` is given)."""
    if orphans:
        body = list_orphans(session, policy, caller, after=after, limit=limit, suggest=suggest)
        for doc in body["documents"]:
            for s in doc.get("suggestions", []):
                audit.touch_person(s["person_id"])
    else:
        body = list_documents(session, policy, caller, person_id=person_id, after=after, limit=limit)
    _touch(audit, "search", body)
    return body


@router.get("/retention", summary="Documents due for review before a date (held ones marked)")
def get_retention(
    session: StoreDep, policy: PolicyDep, caller: RecordsManager, audit: AuditDep,
    due_before: Annotated[date | None, Query(description="Default: 90 days from today.")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> dict[str, Any]:
    """The retention report: review dates before ``due_before``; action ``review``, or ``held`` under a hold."""
    until = due_before or date.today() + timedelta(days=90)
    rows = visible_report(session, policy, caller, retention_report(session, due_before=until, limit=limit))
    body = {"due_before": until.isoformat(), "documents": rows}
    _touch(audit, "search", body)
    return body


@router.get("/{document_id}", summary="One document and every link it has had")
def get_document(document_id: RowId, session: StoreDep, policy: PolicyDep, caller: RecordsManager,
                 audit: AuditDep) -> dict[str, Any]:
    """The document, its retention, and its links (who, when, why; ended ones too)."""
    body = show_document(session, policy, caller, document_id)
    _touch(audit, "read", body)
    return body


@router.post("/{document_id}/links", status_code=201, summary="Link a document to a person (and case)")
def post_link(document_id: RowId, request_body: LinkRequest, session: StoreDep, policy: PolicyDep,
              caller: RecordsManager, audit: AuditDep, schedule: ScheduleDep) -> dict[str, Any]:
    """Link it: any link in force is ended; the metadata flows back to the EDRMS through the outbox."""
    audit.action = "write"
    audit.touch("DocumentReference", str(document_id))
    require_person(session, policy, caller, request_body.person_id)
    link = link_document(session, document_id, request_body.person_id, request_body.episode_id,
                         request_body.reason, caller.user_id, schedule)
    audit.touch_person(link.person_id)
    return link_json(link)


@router.delete("/{document_id}/links/{link_id}", summary="Remove a link, saying why")
def delete_link(document_id: RowId, link_id: RowId, session: StoreDep, policy: PolicyDep, caller: RecordsManager,
                audit: AuditDep, schedule: ScheduleDep,
                reason: Annotated[str | None, Query(min_length=5, max_length=1000)] = None,
                request_body: Annotated[UnlinkRequest | None, Body()] = None) -> dict[str, Any]:
    """End the link (kept, with who ended it and why); the document goes back to the orphans."""
    audit.action = "write"
    audit.touch("DocumentReference", str(document_id))
    why = reason or (request_body.reason if request_body else None)
    if not why:
        raise HTTPException(status_code=422, detail="say why the link is removed (reason)")
    show_document(session, policy, caller, document_id)  # not found when its person is hidden from the caller
    link = unlink_document(session, document_id, link_id, why, caller.user_id, schedule)
    audit.touch_person(link.person_id)
    return link_json(link)
