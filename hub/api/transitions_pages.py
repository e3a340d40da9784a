"""The transitions pages: who is due, starting a transition, its status, history and reconciliation.

Server-rendered for the ``transitions_worker`` role (and ``admin``), signed in through the demo
sign-in cookie like the other pages; forms post and redirect, so everything works from the
keyboard with no script. The same service functions and access decisions as the API
(:mod:`hub.api.transitions`), and every request audited with the people it showed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.access.decision import Access
from hub.access.policy import Policy
from hub.access.rules import Caller, require_write
from hub.api.deps import AuditDep, PolicyDep, StoreDep
from hub.api.pages import TEAM_FILTERS, page_caller, render
from hub.api.transitions import TransitionIn, due_list
from hub.errors import Conflict, Forbidden, HubError
from hub.store.tables import Entity
from hub.transitions import move

router = APIRouter(prefix="/transitions", include_in_schema=False)
ROLES = ("transitions_worker", "admin")

STAGES = {
    "identified": "Identified", "held": "Held", "referral_requested": "Referral sent to adults' services",
    "received": "Received by adults' services", "assessment": "Adult assessment under way",
    "eligible": "Eligible for adult support", "not_eligible": "Not eligible for adult support",
    "plan_in_place": "Adult plan in place", "closed": "Children's case closed",
}
INVOLVEMENT = {"LAC": "Looked after", "CIN_DISABLED": "Child in need with a disability",
               "care_leaver": "Care leaver", "ehc_plan": "EHC plan", "transition": "Transition under way"}
MILESTONES = {"pfa_reviews_from_year_9": "Preparing for Adulthood reviews (from Year 9)",
              "year_11_phase_transfer": "Year 11 phase transfer (EHC plan)",
              "transition_assessment": "Transition assessment (by 17½)",
              "adult_support_in_place": "Adult support in place (by 18)",
              "support_to_25_ends": "Support to 25 ends"}
CONSENT_ROUTES = (("consent", "The young person consents"),
                  ("best_interests", "Best interests: the young person lacks capacity or competence to consent"),
                  ("abuse_neglect_override", "Without consent: risk of abuse or neglect"))


def worker(audit: AuditDep, caller: Annotated[Caller, Depends(page_caller)]) -> Caller:
    """The signed-in user, when they act as transitions worker or admin."""
    if caller.role not in ROLES:
        reason = f"the transitions pages need the role transitions_worker or admin; you are acting as {caller.role}"
        audit.deny(reason)
        raise Forbidden(reason)
    return caller


WorkerPage = Annotated[Caller, Depends(worker)]


def _labels() -> dict[str, Any]:
    return {"stages": STAGES, "involvement": INVOLVEMENT, "consent_routes": CONSENT_ROUTES, "milestones": MILESTONES}


@router.get("", response_class=HTMLResponse)
def due_page(request: Request, session: StoreDep, policy: PolicyDep, caller: WorkerPage, audit: AuditDep,
             due_before: str | None = None) -> HTMLResponse:
    """The young people due, overdue first, with each milestone and where their transition is."""
    audit.action = "search"
    error, until = None, None
    if due_before:
        try:
            until = date.fromisoformat(due_before)
        except ValueError:
            error = "Enter the date as YYYY-MM-DD."
    entries = due_list(session, policy, caller, until, date.today())
    for entry in entries:
        audit.touch_person(entry["person_id"])
    return render(request, "transitions_due.html", {
        "caller": caller, "entries": entries, "due_before": due_before or "", "error": error,
        "overdue": sum(1 for e in entries if e["overdue"]), "today": date.today().isoformat(), **_labels()})


def _person_view(session: Any, policy: Any, caller: Caller, audit: Any, person_id: str) -> dict[str, Any]:
    """The person's document, once the access decision opens them to the caller (refused otherwise)."""
    Access(session, policy, caller, audit).open(person_id)
    person = session.get(Entity, person_id)
    document: dict[str, Any] = orjson.loads(person.document)
    return document


@router.get("/start", response_class=HTMLResponse)
def start_page(request: Request, session: StoreDep, policy: PolicyDep, caller: WorkerPage, audit: AuditDep,
               person_id: str) -> HTMLResponse:
    """The s58 decisions for one young person: likely needs, significant benefit, the consent route."""
    return _start_form(request, session, policy, caller, audit, person_id, {}, None)


def _start_form(request: Request, session: Any, policy: Any, caller: Caller, audit: Any, person_id: str,
                values: dict[str, Any], error: str | None) -> HTMLResponse:
    _person_view(session, policy, caller, audit, person_id)
    due = next((e for e in due_list(session, policy, caller, None, date.today()) if e["person_id"] == person_id),
               None)
    return render(request, "transitions_start.html", {
        "caller": caller, "person_id": person_id, "entry": due, "values": values, "error": error, **_labels()},
        status=422 if error else 200)


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


@router.post("", response_class=HTMLResponse)
def start(request: Request, session: StoreDep, policy: PolicyDep, caller: WorkerPage, audit: AuditDep,
          person_id: Annotated[str, Form()],
          likely_needs_after_18: Annotated[str | None, Form()] = None,
          significant_benefit: Annotated[str | None, Form()] = None,
          significant_benefit_reason: Annotated[str, Form()] = "",
          consent_route: Annotated[str | None, Form()] = None,
          consent_given: Annotated[str | None, Form()] = None,
          has_capacity: Annotated[str | None, Form()] = None,
          requested_by: Annotated[str | None, Form()] = None,
          written_reasons: Annotated[str | None, Form()] = None,
          advice_given: Annotated[str | None, Form()] = None,
          notes: Annotated[str | None, Form()] = None) -> Response:
    """Record the decisions: held with the reason shown, or the adult referral queued through the outbox."""
    audit.action = "write"
    values = {"likely_needs_after_18": likely_needs_after_18, "significant_benefit": significant_benefit,
              "significant_benefit_reason": significant_benefit_reason, "consent_route": consent_route,
              "consent_given": consent_given, "has_capacity": has_capacity, "requested_by": requested_by,
              "written_reasons": written_reasons, "advice_given": advice_given, "notes": notes}
    try:
        body = TransitionIn(
            person_id=person_id, likely_needs_after_18=_yes_no(likely_needs_after_18),  # type: ignore[arg-type]
            significant_benefit=_yes_no(significant_benefit),  # type: ignore[arg-type]
            significant_benefit_reason=significant_benefit_reason.strip(),
            consent_route=consent_route or None,  # type: ignore[arg-type]
            consent_given=_yes_no(consent_given), has_capacity=_yes_no(has_capacity),
            requested_by=requested_by or None,  # type: ignore[arg-type]
            written_reasons=(written_reasons or "").strip() or None,
            advice_given=(advice_given or "").strip() or None, lead_worker=caller.user_id,
            notes=(notes or "").strip() or None)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']).replace('_', ' ')}: {e['msg']}"
                             for e in exc.errors())
        return _start_form(request, session, policy, caller, audit, person_id, values,
                           f"Check the answers: {problems}.")
    require_write(policy, caller, "Transition")
    _person_view(session, policy, caller, audit, person_id)
    try:
        transition_id = move.start(session, move.StartRequest(**body.model_dump()), caller.user_id, date.today())
    except HubError as exc:
        if exc.http_status not in (400, 409, 422):
            raise
        return _start_form(request, session, policy, caller, audit, person_id, values, exc.message)
    audit.touch("Transition", transition_id)
    return RedirectResponse(f"/transitions/{transition_id}", status_code=303)


@router.get("/{transition_id}", response_class=HTMLResponse)
def transition_page(transition_id: str, request: Request, session: StoreDep, policy: PolicyDep,
                    caller: WorkerPage, audit: AuditDep, refused: str | None = None) -> HTMLResponse:
    """One transition: its stage, the decisions, every step and each item with its acknowledgement."""
    shown = move.view(session, transition_id)
    audit.touch("Transition", transition_id)
    person = _person_view(session, policy, caller, audit, shown["person_id"])
    return render(request, "transition.html", {
        "caller": caller, "t": shown, "person": person, "refused": refused,
        "closable": shown.get("stage") == "plan_in_place", **_labels()})


@router.post("/{transition_id}/close-childrens-case", response_class=HTMLResponse)
def close(transition_id: str, request: Request, session: StoreDep, policy: PolicyDep, caller: WorkerPage,
          audit: AuditDep) -> Response:
    """Close the children's case; refused with the reason before the adult plan is in place (s66)."""
    audit.action = "write"
    shown = move.view(session, transition_id)
    _person_view(session, policy, caller, audit, shown["person_id"])
    require_write(policy, caller, "Transition")
    try:
        move.close_childrens_case(session, transition_id, caller.user_id)
    except Conflict as exc:
        return transition_page(transition_id, request, session, policy, caller, audit, refused=exc.message)
    return RedirectResponse(f"/transitions/{transition_id}", status_code=303)


_panel = Environment(loader=FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
                     autoescape=select_autoescape(["html"]))
_panel.filters.update(TEAM_FILTERS)


def record_panel(session: Session, person_id: str, types: frozenset[str], policy: Policy) -> Markup | None:
    """The record page's transition panel (a ``carehub.record_panels`` entry point): each Transition with its
    stage and history, and the children's and adults' episodes side by side (teams by name, from ``policy``), as
    far as ``types`` (what the access decision lets the caller read of this person) allows. Nothing for someone
    with neither."""
    transitions = [move.view(session, tid) for tid in move.list_for_person(session, person_id)] \
        if "Transition" in types else []
    sides: dict[str, list[dict[str, Any]]] = {"childrens": [], "adults": []}
    if "Episode" in types:
        for (document,) in session.execute(select(Entity.document).where(Entity.person_id == person_id,
                                                                          Entity.entity_type == "Episode")):
            doc = orjson.loads(document)
            side = sides.get(doc.get("service_area", ""))
            if side is not None:
                side.append(doc)
    for side in sides.values():
        side.sort(key=lambda e: str(e.get("start") or ""), reverse=True)
    if not transitions and not (sides["childrens"] and sides["adults"]):
        return None
    return Markup(_panel.get_template("transition_panel.html").render(transitions=transitions, episodes=sides,
                                                                      policy=policy))
