"""The finance page (server-rendered, for the finance role) and the planned-vs-actual panel of the record page.

``/finance`` lists commitment lines by provider, cost centre, status and period,
approved beside indicative, planned vs actual with variances highlighted, totals
per page and per filter, and a CSV of the same lines (``/finance/commitments.csv``).
Pages are signed in by the demo cookie like the hub's own pages and audited like
every request. The record page shows :func:`spend_panel` to whoever may read the
person's commitments.
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy.orm import Session

import hub.api
from finance_link.actuals import line_spend, person_spend
from finance_link.views import STATUSES, LineFilter, finance_view, write_lines_csv
from hub.access.finance import require_finance
from hub.access.policy import Policy
from hub.api.deps import AuditDep, PolicyDep, StoreDep
from hub.api.pages import TEAM_FILTERS, PageUser
from hub.errors import Forbidden

router = APIRouter(include_in_schema=False)
TEMPLATES = Path(__file__).resolve().parent / "templates"
HUB_TEMPLATES = Path(hub.api.__file__).resolve().parent / "templates"
_panels = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
# The link's pages extend the hub's base page.
_pages = Jinja2Templates(env=Environment(
    loader=ChoiceLoader([FileSystemLoader(str(TEMPLATES)), FileSystemLoader(str(HUB_TEMPLATES))]),
    autoescape=select_autoescape(["html"])))


def gbp(amount: str | None) -> str:
    """A 2-place decimal string as the page shows money: thousands separated ("33,540.00")."""
    return "" if amount in (None, "") else f"{Decimal(str(amount)):,.2f}"


_panels.filters["gbp"] = gbp
_pages.env.filters["gbp"] = gbp
_pages.env.filters.update(TEAM_FILTERS)  # the hub's base page names the caller's team


def _render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    response: HTMLResponse = _pages.TemplateResponse(request, template, context, status_code=status)
    return response


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/finance", response_class=HTMLResponse)
def finance_page(request: Request, session: StoreDep, policy: PolicyDep, caller: PageUser, audit: AuditDep,
                 provider: str | None = None, cost_centre: str | None = None, status: str | None = None,
                 period_from: str | None = None, period_to: str | None = None,
                 page: Annotated[int, Query(ge=1, le=1_000_000)] = 1) -> HTMLResponse:
    """Commitments by provider, cost centre, status and period; planned vs actual; approved beside indicative."""
    try:
        require_finance(caller, policy)
    except Forbidden as exc:
        audit.deny(exc.message)
        return _render(request, "error.html", {"caller": caller, "title": "Not available to your role",
                                              "detail": exc.message}, status=403)
    flt = LineFilter(provider or None, cost_centre or None, status if status in STATUSES else None,
                     _day(period_from), _day(period_to))
    view = finance_view(session, flt, page)
    query = {k: v for k, v in {"provider": flt.provider, "cost_centre": flt.cost_centre, "status": flt.status,
                                "period_from": period_from if flt.period_from else None,
                                "period_to": period_to if flt.period_to else None}.items() if v}
    return _render(request, "finance.html", {"caller": caller, "view": view, "filter": flt, "query": query,
                                            "statuses": STATUSES,
                                            "period_from": period_from or "", "period_to": period_to or ""})


@router.get("/finance/commitments.csv")
def finance_csv(session: StoreDep, policy: PolicyDep, caller: PageUser, audit: AuditDep,
                provider: str | None = None, cost_centre: str | None = None, status: str | None = None,
                period_from: str | None = None, period_to: str | None = None) -> Response:
    """The filtered lines with planned vs actual as CSV."""
    try:
        require_finance(caller, policy)
    except Forbidden as exc:
        audit.deny(exc.message)
        raise
    flt = LineFilter(provider or None, cost_centre or None, status if status in STATUSES else None,
                     _day(period_from), _day(period_to))
    out = io.StringIO()
    count = write_lines_csv(session, flt, out)
    audit.touch("CommitmentLines", f"csv:{count}")
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="commitments.csv"'})


def spend_panel(session: Session, person_id: str, types: frozenset[str], policy: Policy) -> Markup | None:
    """The record page's planned-vs-actual panel for a caller who may read the person's commitments."""
    if "Commitment" not in types:
        return None
    spends = line_spend(session, person_id=person_id)
    if not spends:
        return None
    context: dict[str, Any] = {"lines": [s.as_json() for s in spends], "total": person_spend(spends)}
    return Markup(_panels.get_template("spend_panel.html").render(**context))
