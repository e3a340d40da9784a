"""Identity routes: the review queue, merge and unmerge, and why a person's records were joined.

Reviewing, merging and unmerging need the role ``admin`` or ``data_quality``;
the explanation of a person's links is for anyone who may read that person.
Thin routes over :mod:`hub.identity.review`; the audit middleware records every
call, with the people each one touched.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from hub.access.decision import Access
from hub.access.rules import Caller
from hub.api.deps import AuditDep, CurrentUser, PolicyDep, StoreDep, require_role
from hub.api.params import AfterId, RowId
from hub.audit import AuditContext
from hub.identity.review import (
    REVIEWER_ROLES,
    decide_pair,
    explain_person,
    list_reviews,
    merge_persons,
    show_merge,
    show_review,
    unmerge_persons,
)

router = APIRouter(prefix="/api/identity", tags=["identity"])
ReviewerUser = Annotated[Caller, Depends(require_role(*REVIEWER_ROLES))]


def reviewer_access(session: StoreDep, policy: PolicyDep, caller: ReviewerUser, audit: AuditDep) -> Access:
    """The access decision for a reviewer's request."""
    return Access(session, policy, caller, audit)


ReviewerAccess = Annotated[Access, Depends(reviewer_access)]


class MergeIn(BaseModel):
    """Two people a reviewer knows to be one: ``merged`` folds into ``survivor``."""

    model_config = ConfigDict(extra="forbid")

    survivor: str = Field(description="The person id that stays.")
    merged: str = Field(description="The person id folded into the survivor.")


def touch_review(audit: AuditContext, review: dict[str, Any]) -> None:
    """Note the review and both of its people on the audit row."""
    audit.touch("MatchReview", str(review["id"]))
    audit.touch_person(review["person_a"]["id"])
    audit.touch_person(review["person_b"]["id"])


def touch_merge(audit: AuditContext, merge: dict[str, Any]) -> None:
    """Note the merge and both of its people on the audit row."""
    audit.touch("PersonMerge", str(merge["id"]))
    audit.touch_person(merge["survivor"])
    audit.touch_person(merge["merged"])


@router.get("/reviews", summary="Pairs of records that may be one person, oldest first")
def reviews(
    session: StoreDep, access: ReviewerAccess, audit: AuditDep,
    status: Literal["open", "accepted", "rejected"] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: AfterId = None,
) -> list[dict[str, Any]]:
    """Each review with both people (sealed ones without details), its score and per-field evidence."""
    audit.action = "search"
    found = list_reviews(session, access, status, limit, after)
    for review in found:
        touch_review(audit, review)
    return found


@router.get("/reviews/{review_id}", summary="One review")
def review(review_id: RowId, session: StoreDep, access: ReviewerAccess, audit: AuditDep) -> dict[str, Any]:
    """Both people side by side with the evidence."""
    found = show_review(session, access, review_id)
    touch_review(audit, found)
    return found


@router.post("/reviews/{review_id}/accept", summary="The two are one person: merge them")
def accept(review_id: RowId, session: StoreDep, access: ReviewerAccess, audit: AuditDep) -> dict[str, Any]:
    """The longer-known person survives; change events go to the outbox. 409 when already decided."""
    decided = decide_pair(session, access, review_id, accept=True)
    touch_review(audit, decided)
    return decided


@router.post("/reviews/{review_id}/reject", summary="The two are different people: never ask again")
def reject(review_id: RowId, session: StoreDep, access: ReviewerAccess, audit: AuditDep) -> dict[str, Any]:
    """The pair is remembered as two people. 409 when already decided."""
    decided = decide_pair(session, access, review_id, accept=False)
    touch_review(audit, decided)
    return decided


@router.post("/merges", summary="Merge two people", status_code=201)
def merge(body: MergeIn, session: StoreDep, access: ReviewerAccess, audit: AuditDep) -> dict[str, Any]:
    """Fold one person into another with full history; change events go to the outbox."""
    done = merge_persons(session, access, body.survivor, body.merged)
    touch_merge(audit, done)
    return done


@router.get("/merges/{merge_id}", summary="One merge")
def merge_history(merge_id: RowId, session: StoreDep, access: ReviewerAccess, audit: AuditDep) -> dict[str, Any]:
    """Who merged whom, when, and whether it was undone."""
    found = show_merge(session, access, merge_id)
    touch_merge(audit, found)
    return found


@router.post("/merges/{merge_id}/unmerge", summary="Undo a merge exactly")
def unmerge(merge_id: RowId, session: StoreDep, access: ReviewerAccess, audit: AuditDep) -> dict[str, Any]:
    """Both people and every re-pointed record as they were; change events go to the outbox."""
    done = unmerge_persons(session, access, merge_id)
    touch_merge(audit, done)
    return done


@router.get("/persons/{person_id}/links", summary="Why this person's records were joined")
def links(person_id: str, session: StoreDep, policy: PolicyDep, caller: CurrentUser, audit: AuditDep
          ) -> dict[str, Any]:
    """Each joined record with its score and per-field evidence, people's decisions, and merges."""
    audit.touch_person(person_id)
    return explain_person(session, Access(session, policy, caller, audit), person_id)
