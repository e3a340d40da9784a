"""The records manager's pages: orphans with suggested people (link in two clicks), linked documents
(unlink with a reason), and the retention report.

Server-rendered for the role ``records_manager`` (signed in through the demo sign-in cookie, like the
other pages); forms post and redirect, so the pages work from the keyboard with no script. Every request
is audited like an API call. Added to the app through the ``carehub.pages`` entry-point group.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from edrms.api import ScheduleDep
from edrms.records import counts, link_document, links_of, recently_linked, unlink_document
from edrms.service import (
    list_orphans,
    require_person,
    retention_report,
    show_document,
    visible_people,
    visible_report,
)
from hub.access.rules import Caller
from hub.api.deps import AuditDep, PolicyDep, StoreDep
from hub.api.pages import TEAM_FILTERS, page_caller
from hub.api.params import AfterId, RowId
from hub.errors import Forbidden

router = APIRouter(prefix="/records", include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=[str(Path(__file__).resolve().parent / "templates"),
                                       str(Path(__file__).resolve().parents[1] / "hub" / "api" / "templates")])
TEMPLATES.env.filters.update(TEAM_FILTERS)  # the hub's base page names the caller's team
DONE = {"linked": "Linked: the document is on the person's record, and its metadata goes back to the EDRMS.",
        "unlinked": "Unlinked: the document is back among the orphans; the link is kept with your reason."}


def records_manager(audit: AuditDep, caller: Annotated[Caller, Depends(page_caller)]) -> Caller:
    """The signed-in user, when they act as records manager."""
    if caller.role != "records_manager":
        reason = f"these pages need the role records_manager; you are acting as {caller.role}"
        audit.deny(reason)
        raise Forbidden(reason)
    return caller


RecordsManagerPage = Annotated[Caller, Depends(records_manager)]


def render(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    """A page from edrms/templates (extending the hub's base page)."""
    response: HTMLResponse = TEMPLATES.TemplateResponse(request, template, context)
    return response


@router.get("/documents", response_class=HTMLResponse)
def documents_page(request: Request, session: StoreDep, policy: PolicyDep, caller: RecordsManagerPage,
                   audit: AuditDep, done: str | None = None,
                   after: AfterId = None) -> HTMLResponse:
    """The orphans with suggested people, then the documents linked most recently."""
    audit.action = "search"
    orphans = list_orphans(session, policy, caller, after=after, limit=25, suggest=True)
    for doc in orphans["documents"]:
        audit.touch("DocumentReference", str(doc["id"]))
        for s in doc["suggestions"]:
            audit.touch_person(s["person_id"])
    linked = recently_linked(session, 25)
    allowed = visible_people(session, policy, caller, [d.person_id for d in linked if d.person_id])
    linked = [d for d in linked if d.person_id in allowed]
    active = {doc_id: [k for k in links if k.active] for doc_id, links in links_of(session, [d.id for d in linked])
              .items()}
    for doc in linked:
        audit.touch("DocumentReference", str(doc.id))
        if doc.person_id:
            audit.touch_person(doc.person_id)
    return render(request, "edrms_documents.html", {
        "caller": caller, "orphans": orphans, "linked": linked, "active": active, "counts": counts(session),
        "done": DONE.get(done or "")})


@router.post("/documents/{document_id}/link")
def link_form(document_id: RowId, session: StoreDep, policy: PolicyDep, caller: RecordsManagerPage, audit: AuditDep,
              schedule: ScheduleDep, person_id: Annotated[str, Form(min_length=1, max_length=36)],
              reason: Annotated[str, Form(min_length=5, max_length=1000)]) -> Response:
    """Link the document to the person chosen, then back to the list."""
    audit.action = "write"
    audit.touch("DocumentReference", str(document_id))
    require_person(session, policy, caller, person_id)
    link = link_document(session, document_id, person_id, None, reason, caller.user_id, schedule)
    audit.touch_person(link.person_id)
    return RedirectResponse("/records/documents?done=linked", status_code=303)


@router.post("/documents/{document_id}/links/{link_id}/unlink")
def unlink_form(document_id: RowId, link_id: RowId, session: StoreDep, policy: PolicyDep, caller: RecordsManagerPage,
                audit: AuditDep, schedule: ScheduleDep,
                reason: Annotated[str, Form(min_length=5, max_length=1000)]) -> Response:
    """End the link with the reason given, then back to the list."""
    audit.action = "write"
    audit.touch("DocumentReference", str(document_id))
    show_document(session, policy, caller, document_id)
    link = unlink_document(session, document_id, link_id, reason, caller.user_id, schedule)
    audit.touch_person(link.person_id)
    return RedirectResponse("/records/documents?done=unlinked", status_code=303)


@router.get("/retention", response_class=HTMLResponse)
def retention_page(request: Request, session: StoreDep, policy: PolicyDep, caller: RecordsManagerPage,
                   audit: AuditDep, due_before: Annotated[date | None, Query()] = None) -> HTMLResponse:
    """Documents whose review date falls before the date: review, or held under a legal hold."""
    audit.action = "search"
    until = due_before or date.today() + timedelta(days=90)
    rows = visible_report(session, policy, caller, retention_report(session, due_before=until))
    for row in rows:
        audit.touch("DocumentReference", str(row["id"]))
        audit.touch_person(row["person_id"])
    return render(request, "edrms_retention.html", {"caller": caller, "rows": rows, "due_before": until})
