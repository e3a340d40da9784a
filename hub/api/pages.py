"""Server-rendered pages: demo sign-in, person search, the record page and the break-glass dialog.

The pages use the same service functions and access rules as the API; the
demo sign-in puts a token from the local demo issuer in an HttpOnly, SameSite
cookie. Every page request is audited like an API call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from importlib.metadata import entry_points
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy.orm import Session

from hub.access.policy import Policy
from hub.access.rules import Caller
from hub.api.deps import COOKIE, AuditDep, PolicyDep, StoreDep, authenticate
from hub.errors import Forbidden, HubError, NotFound
from hub.record import InvalidQuery, PersonQuery, contact_summary, open_record, search_people, timeline
from hub.store.identity import person_links

router = APIRouter(include_in_schema=False)


def page_caller(request: Request, audit: AuditDep,
                token: Annotated[str | None, Cookie(alias=COOKIE)] = None) -> Caller:
    """The signed-in user of a page (from the demo sign-in cookie)."""
    return authenticate(request, token, audit, None, None, None)


PageUser = Annotated[Caller, Depends(page_caller)]


def _policy(context: Context) -> Policy:
    """The policy of the page's ``request`` (or the ``policy`` a panel is rendered with)."""
    policy: Policy = context["policy"] if "policy" in context else context["request"].app.state.policy
    return policy


@pass_context
def team_label(context: Context, team: str | None) -> str:
    """The ``team`` filter of every page's templates: a team as people read it, its name with its code
    (``Policy.team_label``)."""
    return _policy(context).team_label(team)


@pass_context
def team_name(context: Context, team: str | None) -> str:
    """The ``team_name`` filter: a team's name alone, where its code would only crowd the line (the header)."""
    policy = _policy(context)
    return policy.team_name(policy.team_code(team)) or ""


TEAM_FILTERS = {"team": team_label, "team_name": team_name}
"""The filters every environment rendering the hub's templates registers (the base page uses them)."""


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page from hub/api/templates."""
    response: HTMLResponse = request.app.state.templates.TemplateResponse(request, template, context,
                                                                          status_code=status)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, audit: AuditDep, token: Annotated[str | None, Cookie(alias=COOKIE)] = None) -> Response:
    """Search when signed in, the sign-in page otherwise."""
    return RedirectResponse("/persons" if token else "/sign-in", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, audit: AuditDep) -> HTMLResponse:
    """The demo user picker; 404 unless the settings switch demo sign-in on (``auth.demo``)."""
    settings = request.app.state.settings
    enabled = request.app.state.demo_issuer is not None
    if not enabled:
        audit.deny("demo sign-in is switched off")
    return render(request, "sign_in.html", {"users": settings.auth.demo_users, "enabled": enabled},
                  status=200 if enabled else 404)


@router.post("/sign-in")
def sign_in(request: Request, audit: AuditDep, user: Annotated[str, Form()]) -> Response:
    """Sign in as a demo user: a demo token in a cookie (404 unless ``auth.demo`` is on)."""
    settings = request.app.state.settings
    issuer = request.app.state.demo_issuer
    if issuer is None:
        audit.deny("demo sign-in is switched off")
        raise NotFound("demo sign-in is switched off")
    chosen = next((u for u in settings.auth.demo_users if u.user == user), None)
    if chosen is None:
        raise NotFound("no such demo user")
    audit.user_id, audit.role, audit.team = chosen.user, chosen.role, chosen.team
    token = issuer.issue(chosen.user, chosen.role, chosen.team, ttl=settings.auth.demo_ttl_seconds, name=chosen.name)
    response = RedirectResponse("/persons", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=settings.auth.demo_ttl_seconds)
    return response


@router.post("/sign-out")
def sign_out(audit: AuditDep) -> Response:
    """Forget the demo token."""
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/persons", response_class=HTMLResponse)
def search_page(request: Request, session: StoreDep, policy: PolicyDep, caller: PageUser, audit: AuditDep,
                q: str | None = None, birth_date: str | None = None, postcode: str | None = None,
                nhs_number: str | None = None) -> HTMLResponse:
    """Find a person by name, date of birth, postcode or NHS number."""
    context: dict[str, Any] = {"caller": caller, "q": q or "", "birth_date": birth_date or "",
                               "postcode": postcode or "", "nhs_number": nhs_number or "", "people": None,
                               "error": None}
    if any((q, birth_date, postcode, nhs_number)):
        try:
            born = date.fromisoformat(birth_date) if birth_date else None
            query = PersonQuery(name=q or None, birth_date=born, postcode=postcode or None,
                                nhs_number=nhs_number or None)
            context["people"] = search_people(session, policy, caller, query, audit, limit=50).people
        except (ValueError, InvalidQuery) as exc:
            context["error"] = exc.message if isinstance(exc, HubError) else "Enter the date as YYYY-MM-DD."
    return render(request, "search.html", context, status=422 if context["error"] else 200)


def _record_page(request: Request, session: StoreDep, policy: PolicyDep, caller: Caller, audit: AuditDep,
                 person_id: str) -> HTMLResponse:
    try:
        record = open_record(session, policy, caller, person_id, audit)
    except Forbidden as exc:
        return render(request, "break_glass.html", {"caller": caller, "person_id": person_id,
                                                    "detail": exc.message}, status=403)
    return render(request, "record.html", {
        "caller": caller, "summary": contact_summary(record), "timeline": timeline(record, policy),
        "record": record, "hidden": record.hidden_sections, "links": record.identity(person_links(session, person_id)),
        "panels": record_panels(session, person_id, record.view.types, policy),
    })


@functools.cache
def _panel_makers() -> tuple[Callable[[Session, str, frozenset[str], Policy], Markup | None], ...]:
    return tuple(ep.load() for ep in entry_points(group="carehub.record_panels"))


def record_panels(session: Session, person_id: str, types: frozenset[str], policy: Policy) -> list[Markup]:
    """Sections links add to the record page (``carehub.record_panels`` entry points), each given the entity
    types the caller may read of this person, so a panel shows only what the access decision allowed, and the
    policy (for the teams' names)."""
    return [panel for make in _panel_makers() if (panel := make(session, person_id, types, policy)) is not None]


@router.get("/persons/{person_id}", response_class=HTMLResponse)
def record_page(person_id: str, request: Request, session: StoreDep, policy: PolicyDep, caller: PageUser,
                audit: AuditDep) -> HTMLResponse:
    """The record page: contact summary, then the timeline."""
    return _record_page(request, session, policy, caller, audit, person_id)


@router.post("/persons/{person_id}/break-glass", response_class=HTMLResponse)
def break_glass(person_id: str, request: Request, session: StoreDep, policy: PolicyDep, audit: AuditDep,
                reason: Annotated[str, Form()], token: Annotated[str | None, Cookie(alias=COOKIE)] = None
                ) -> HTMLResponse:
    """Open a record outside the caller's usual access, with a stated reason (audited and reviewed)."""
    caller = authenticate(request, token, audit, None, None, reason)
    return _record_page(request, session, policy, caller, audit, person_id)
