"""Transitions routes: who is due, starting a transition, its status, history and reconciliation.

For the ``transitions_worker`` role (and ``admin``). Every person an answer names passes the
access decision first (:class:`hub.access.decision.Access`): a sealed young person is not listed,
and the role's cohort rule keeps it to the transitions cohort. Thin routes over
:mod:`hub.transitions`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from hub.access.decision import Access, load_subjects
from hub.access.rules import Caller, require_write
from hub.api.deps import AuditDep, PolicyDep, StoreDep, require_role
from hub.settings import get_settings
from hub.transitions import move
from hub.transitions.due import scan

router = APIRouter(prefix="/api/transitions", tags=["transitions"])
TransitionsUser = Annotated[Caller, Depends(require_role("transitions_worker", "admin"))]


class TransitionIn(BaseModel):
    """Starting a transition: the s58 decisions (docs/transitions.md)."""

    model_config = ConfigDict(extra="forbid")

    person_id: str
    likely_needs_after_18: bool = Field(description="s58(1): likely to need care and support after 18.")
    significant_benefit: bool = Field(description="s58(1): assessing now would be of significant benefit.")
    significant_benefit_reason: str = Field(min_length=3, description="Why (timing: exams, time to plan, family).")
    consent_route: Literal["consent", "best_interests", "abuse_neglect_override"] | None = None
    consent_given: bool | None = None
    has_capacity: bool | None = None
    requested_by: Literal["child", "parent", "carer"] | None = None
    written_reasons: str | None = Field(default=None, description="s58(5): when a request is declined.")
    advice_given: str | None = Field(default=None, description="s58(5): information and advice given.")
    lead_worker: str | None = None
    notes: str | None = None


def _name(person: dict[str, Any] | None) -> str | None:
    names = (person or {}).get("names") or [{}]
    parts = [*names[0].get("given", []), names[0].get("family") or ""]
    return " ".join(p for p in parts if p) or None


def due_list(session: Any, policy: Any, caller: Caller, due_before: date | None, today: date) -> list[dict[str, Any]]:
    """The due list as this caller may see it: only people the access decision opens to them (a list never
    breaks glass)."""
    entries = scan(session, today, get_settings().transitions, due_before=due_before)
    access = Access(session, policy, caller)
    subjects = load_subjects(session, [e.person_id for e in entries])
    return [{**entry.as_json(), "name": _name(subjects[entry.person_id].document)} for entry in entries
            if access.decide(subjects[entry.person_id], exact=False).open]


@router.get("", summary="Young people due for transition to adult services")
def due(session: StoreDep, policy: PolicyDep, caller: TransitionsUser, audit: AuditDep,
        due_before: Annotated[date | None, Query(description="Only those with a milestone due by this date.")] = None,
        ) -> dict[str, Any]:
    """The cohort from 14 (looked after, disabled children in need, care leavers and EHC plans to 25) with each
    milestone's due date and an overdue flag, overdue first."""
    entries = due_list(session, policy, caller, due_before, date.today())
    for entry in entries:
        audit.touch_person(entry["person_id"])
    return {"today": date.today().isoformat(), "due_before": due_before, "count": len(entries), "entries": entries}


@router.post("", status_code=201, summary="Start a transition (record the s58 decisions)")
def start(body: TransitionIn, session: StoreDep, policy: PolicyDep, caller: TransitionsUser,
          audit: AuditDep) -> dict[str, Any]:
    """Holds with the reason when the consent condition or significant benefit is not met; else queues the adult
    referral through the outbox."""
    audit.action = "write"
    audit.touch_person(body.person_id)
    require_write(policy, caller, "Transition")
    Access(session, policy, caller, audit).open(body.person_id)
    transition_id = move.start(session, move.StartRequest(**body.model_dump()), caller.user_id, date.today())
    audit.touch("Transition", transition_id)
    return move.view(session, transition_id)


def _visible(session: Any, policy: Any, caller: Caller, audit: Any, transition_id: str) -> dict[str, Any]:
    shown = move.view(session, transition_id)
    audit.touch_person(shown["person_id"])
    audit.touch("Transition", transition_id)
    Access(session, policy, caller, audit).open(shown["person_id"])
    return shown


@router.get("/{transition_id}", summary="A transition: status, history and reconciliation")
def show(transition_id: str, session: StoreDep, policy: PolicyDep, caller: TransitionsUser,
         audit: AuditDep) -> dict[str, Any]:
    """Its status, every step with who took it, and each item sent with the adults' system's acknowledgement."""
    return _visible(session, policy, caller, audit, transition_id)


@router.post("/{transition_id}/close-childrens-case", summary="Close the children's case (after the adult plan)")
def close(transition_id: str, session: StoreDep, policy: PolicyDep, caller: TransitionsUser,
          audit: AuditDep) -> dict[str, Any]:
    """Refused (409) until the adult plan is in place: children's services continue until then (s66)."""
    audit.action = "write"
    _visible(session, policy, caller, audit, transition_id)
    require_write(policy, caller, "Transition")
    move.close_childrens_case(session, transition_id, caller.user_id)
    return move.view(session, transition_id)
