"""The finance link's API: the commitment feed the finance system pulls, actuals it posts back, spend.

Thin routes: each authorises through :mod:`hub.access.finance`, calls one
service function and shapes the answer. Every call is audited by the hub's
audit middleware (who pulled which page, who posted which actuals).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from finance_link.actuals import line_spend, person_spend, record_actuals
from finance_link.feed import read_page
from hub.access.finance import require_finance
from hub.access.policy import Policy
from hub.access.rules import Caller
from hub.api.deps import AuditDep, CurrentUser, PolicyDep, StoreDep
from hub.audit import AuditContext
from hub.errors import Forbidden
from hub.record import open_record

router = APIRouter(prefix="/api/finance", tags=["finance"])


def _max_limit(request: Request) -> int:
    return int(request.app.state.settings.finance.feed_max_limit)


@router.get("/commitments", summary="Commitment versions after a cursor, oldest first", response_class=Response,
            responses={200: {"content": {"application/json": {"example": {"items": [], "next": "fv1.0"}}}}})
def commitments(request: Request, session: StoreDep, policy: PolicyDep, caller: CurrentUser, audit: AuditDep,
                since: Annotated[str | None, Query(description="The `next` cursor of the last page loaded.")] = None,
                limit: Annotated[int, Query(ge=1, description="Versions per page (at most feed_max_limit).")] = 500,
                ) -> Response:
    """Every new or changed commitment version exactly once, in order: ``{"items": [...], "next": CURSOR}``.

    Money is a decimal string with two places. Keep ``next`` and ask again with it.
    """
    _finance_only(caller, policy, audit)
    page = read_page(session, since, min(limit, _max_limit(request)))
    audit.action = "read"
    audit.touch("CommitmentFeed", f"{since or 'start'}..{page.next}:{len(page.raw)}")
    return Response(page.as_bytes(), media_type="application/json")


class ActualIn(BaseModel):
    """One payment or invoice against a commitment line (money as a decimal string, two places at most)."""

    reference: str = Field(description="The finance system's document number; unique.")
    line_id: str
    kind: str = Field(description="invoice or payment")
    period_from: str = Field(description="YYYY-MM-DD")
    period_to: str = Field(description="YYYY-MM-DD")
    amount: str = Field(description="Pounds, e.g. 860.00")


class ActualsIn(BaseModel):
    """A batch of actuals."""

    actuals: list[ActualIn] = Field(max_length=10_000)


@router.post("/actuals", summary="Payments and invoices against commitment lines")
def post_actuals(request: Request, body: ActualsIn, session: StoreDep, policy: PolicyDep, caller: CurrentUser,
                 audit: AuditDep) -> dict[str, Any]:
    """Record actuals: ``{"accepted", "duplicates", "rejected": [{"index", "reference", "reason", "detail"}]}``.

    The same reference twice is a duplicate and changes nothing; a line whose actual spend strays from plan by
    more than the configured threshold is flagged for the budget holder.
    """
    _finance_only(caller, policy, audit)
    result = record_actuals(session, [a.model_dump() for a in body.actuals], f"api:{caller.user_id}",
                            request.app.state.settings.finance.variance_threshold_percent)
    audit.action = "write"
    for line_id in sorted(result.lines):
        audit.touch("CommitmentLine", line_id)
    return result.as_json()


@router.get("/persons/{person_id}/spend", summary="Planned vs actual of one person's commitment lines")
def spend_of_person(person_id: str, session: StoreDep, policy: PolicyDep, caller: CurrentUser,
                    audit: AuditDep) -> dict[str, Any]:
    """Per line and in total: planned, actual, variance (money as 2-place decimal strings), flags."""
    open_record(session, policy, caller, person_id, audit, types=frozenset({"Commitment"}), with_provenance=False)
    if "Commitment" not in policy.readable_types(caller.role):
        audit.deny("the role may not read commitments")
        raise Forbidden("your role may not read commitments")
    spends = line_spend(session, person_id=person_id)
    return {"person_id": person_id, "lines": [s.as_json() for s in spends], "total": person_spend(spends)}


def _finance_only(caller: Caller, policy: Policy, audit: AuditContext) -> None:
    try:
        require_finance(caller, policy)
    except Forbidden as exc:
        audit.deny(exc.message)
        raise
