"""The finance link's API: the commitment feed the finance system pulls, actuals it posts back, spend.

Thin routes: each authorises through :mod:`hub.access.finance`, calls one
service function and shapes the answer. Every call is audited by the hub's
audit middleware (who pulled which page, who posted which actuals).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from finance_link.feed import read_page
from hub.access.finance import require_finance
from hub.api.deps import AuditDep, CurrentUser, PolicyDep, StoreDep

router = APIRouter(prefix="/api/finance", tags=["finance"])


def _max_limit(request: Request) -> int:
    return int(request.app.state.settings.finance.feed_max_limit)


@router.get("/commitments", summary="Commitment versions after a cursor, oldest first")
def commitments(request: Request, session: StoreDep, policy: PolicyDep, caller: CurrentUser, audit: AuditDep,
                since: Annotated[str | None, Query(description="The `next` cursor of the last page loaded.")] = None,
                limit: Annotated[int, Query(ge=1, description="Versions per page (at most feed_max_limit).")] = 500,
                ) -> dict[str, Any]:
    """Every new or changed commitment version exactly once, in order: ``{"items": [...], "next": CURSOR}``.

    Money is a decimal string with two places. Keep ``next`` and ask again with it.
    """
    try:
        require_finance(caller, policy)
    except Exception as exc:
        audit.deny(str(exc))
        raise
    page = read_page(session, since, min(limit, _max_limit(request)))
    audit.action = "read"
    audit.touch("CommitmentFeed", f"{since or 'start'}..{page.next}:{len(page.items)}")
    return page.as_json()
