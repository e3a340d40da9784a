"""The identity review pages: the queue, one pair side by side, accept, reject and undo a merge.

Server-rendered for the roles ``admin`` and ``data_quality`` (signed in through
the demo sign-in cookie, like the other pages); forms post and redirect, so the
pages work from the keyboard with no script. Every request is audited like an
API call, with the people it showed or changed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.access.decision import Access
from hub.access.rules import Caller
from hub.api.deps import AuditDep, PolicyDep, StoreDep
from hub.api.identity import touch_merge, touch_review
from hub.api.pages import page_caller, render
from hub.api.params import RowId
from hub.errors import Conflict, Forbidden
from hub.identity.review import REVIEWER_ROLES, decide_pair, list_reviews, show_review, unmerge_persons

router = APIRouter(prefix="/identity", include_in_schema=False)

DONE = {
    "accepted": "Merged: the two records are now one person.",
    "rejected": "Kept apart: the two are different people and will not be asked about again.",
    "unmerged": "Merge undone: both people and their records are as they were.",
}


def reviewer(audit: AuditDep, caller: Annotated[Caller, Depends(page_caller)]) -> Caller:
    """The signed-in user, when they act as admin or data quality officer."""
    if caller.role not in REVIEWER_ROLES:
        reason = f"the review queue needs the role admin or data_quality; you are acting as {caller.role}"
        audit.deny(reason)
        raise Forbidden(reason)
    return caller


ReviewerPage = Annotated[Caller, Depends(reviewer)]


def reviewer_page_access(session: StoreDep, policy: PolicyDep, caller: ReviewerPage, audit: AuditDep) -> Access:
    """The access decision for a reviewer's page."""
    return Access(session, policy, caller, audit)


ReviewerPageAccess = Annotated[Access, Depends(reviewer_page_access)]


@router.get("/reviews", response_class=HTMLResponse)
def queue_page(request: Request, session: StoreDep, access: ReviewerPageAccess, audit: AuditDep,
               status: Annotated[str, Query(pattern="^(open|accepted|rejected)$")] = "open",
               done: str | None = None) -> HTMLResponse:
    """The pairs waiting for a decision (or those decided), oldest first."""
    audit.action = "search"
    reviews = list_reviews(session, access, status, limit=100)
    for review in reviews:
        touch_review(audit, review)
    return render(request, "identity_reviews.html", {"caller": access.caller, "reviews": reviews, "status": status,
                                                     "done": DONE.get(done or "")})


@router.get("/reviews/{review_id}", response_class=HTMLResponse)
def review_page(review_id: RowId, request: Request, session: StoreDep, access: ReviewerPageAccess, audit: AuditDep,
                done: str | None = None) -> HTMLResponse:
    """Both people side by side, the evidence, and the decision."""
    review = show_review(session, access, review_id)
    touch_review(audit, review)
    return render(request, "identity_review.html", {"caller": access.caller, "review": review,
                                                    "done": DONE.get(done or "")})


@router.post("/reviews/{review_id}/accept")
def accept_form(review_id: RowId, session: StoreDep, access: ReviewerPageAccess, audit: AuditDep) -> Response:
    """Merge the two, then back to the pair with the outcome."""
    touch_review(audit, decide_pair(session, access, review_id, accept=True))
    return RedirectResponse(f"/identity/reviews/{review_id}?done=accepted", status_code=303)


@router.post("/reviews/{review_id}/reject")
def reject_form(review_id: RowId, session: StoreDep, access: ReviewerPageAccess, audit: AuditDep) -> Response:
    """Keep the two apart, then back to the queue."""
    touch_review(audit, decide_pair(session, access, review_id, accept=False))
    return RedirectResponse("/identity/reviews?done=rejected", status_code=303)


@router.post("/reviews/{review_id}/unmerge")
def unmerge_form(review_id: RowId, session: StoreDep, access: ReviewerPageAccess, audit: AuditDep) -> Response:
    """Undo the merge an accepted review made."""
    review = show_review(session, access, review_id)
    if review["merge_id"] is None:
        raise Conflict("this review made no merge to undo")
    touch_merge(audit, unmerge_persons(session, access, review["merge_id"]))
    return RedirectResponse(f"/identity/reviews/{review_id}?done=unmerged", status_code=303)
