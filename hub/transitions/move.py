"""The move: starting a transition, holding it, handing the case over, following it, closing the children's case.

:func:`start` records the s58 decisions - likely needs after 18, significant benefit (with
its date and reason), the consent route - and then either *holds* the transition with a
clear reason (the consent condition is not met, assessing now would not be of significant
benefit, a declined request with its written reasons), or asks for the adult referral:
the Transition is written at stage ``referral_requested`` carrying the handover (the
person, contacts, relationships, current plans and costs, risks, linked documents, the
children's episodes), and its change event reaches the adults' system through the outbox
and delivery (the adults' target posts it with an idempotency key made from the transition,
so however often the push is retried the referral is made once).

:func:`follow` asks the adults' system about each referral under way (an
:class:`AdultsSystem`, named in ``[transitions.adults_system]``): it records the adults'
system's id, moves the stage with the referral (received, assessment, eligible or not
eligible, plan in place) and reconciles every item sent against the acknowledgement.
:func:`close_childrens_case` refuses before the adult plan is in place (s66);
:func:`raise_continuity_flags` flags everyone 18 or over whose adult plan is not in place.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict, HubError, NotFound, QuarantineError
from hub.model import Flag, Transition
from hub.store.tables import Entity, utcnow
from hub.store.transitions import TransitionItem, TransitionStep
from hub.store.writer import Provenance, write_canonical
from hub.transitions.due import PLAN_IN_PLACE, age_on

SOURCE = "transitions"
CONSENT_ROUTES = ("consent", "best_interests", "abuse_neglect_override")
FOLLOWED = ("referral_requested", "received", "assessment", "eligible")
ADULT_STAGES = ("received", "assessment", "eligible", "not_eligible", "plan_in_place")
HANDOVER_TYPES = ("Referral", "Relationship", "CarePlan", "Commitment", "Flag", "DocumentLink", "Episode")
ITEM_KIND = {"Person": "person", "Referral": "contact", "Relationship": "relationship", "CarePlan": "plan",
             "Commitment": "cost", "Flag": "risk", "DocumentLink": "document", "Episode": "episode"}


class TransitionRefused(HubError):
    """A transition request that cannot be recorded as asked (a missing decision, an impossible route)."""

    code = "CAREHUB-E340"
    http_status = 422


@dataclass(frozen=True, slots=True)
class StartRequest:
    """What a worker records when starting a transition (the s58 decisions)."""

    person_id: str
    likely_needs_after_18: bool
    significant_benefit: bool
    significant_benefit_reason: str
    consent_route: str | None = None
    consent_given: bool | None = None
    has_capacity: bool | None = None
    requested_by: str | None = None
    written_reasons: str | None = None
    advice_given: str | None = None
    lead_worker: str | None = None
    notes: str | None = None


class AdultsSystem(Protocol):
    """What :func:`follow` needs of the adults' case system."""

    def referral(self, idempotency_key: str) -> dict[str, Any] | None:
        """The referral made with this key: ``id``, ``status``, ``plan_id`` and ``items`` (each ``ref``,
        ``status`` accepted/refused, ``receipt``, ``reason``); None when it has not arrived."""
        ...


def referral_key(transition_id: str) -> str:
    """The idempotency key of a transition's adult referral: one per transition, whatever its version."""
    return f"transition:{transition_id}"


def hold_reason(request: StartRequest) -> str | None:
    """Why the transition must be held rather than referred (None: the s58 conditions are met)."""
    if not request.likely_needs_after_18:
        return "not likely to have needs for care and support after 18 (s58(1))"
    if not request.significant_benefit:
        return f"an assessment now would not be of significant benefit (s58(1)): {request.significant_benefit_reason}"
    route = request.consent_route
    if route == "consent":
        if request.consent_given is not True:
            return ("the young person has not consented (s58(3)); the council must still assess if they are "
                    "experiencing or at risk of abuse or neglect (s58(4))")
        if request.has_capacity is False:
            return "consent was recorded but the young person lacks capacity: record a best-interests decision"
        return None
    if route == "best_interests":
        if request.has_capacity is not False:
            return "best interests applies only where the young person lacks capacity or competence (s58(3)(b))"
        return None
    if route == "abuse_neglect_override":
        return None
    return "no consent route recorded (consent, best interests, or the abuse/neglect override)"


def _check(request: StartRequest) -> None:
    if request.consent_route is not None and request.consent_route not in CONSENT_ROUTES:
        raise TransitionRefused(f"consent_route is one of {', '.join(CONSENT_ROUTES)}")
    if not request.significant_benefit_reason.strip():
        raise TransitionRefused("the significant-benefit decision needs its reason")
    declined = not (request.likely_needs_after_18 and request.significant_benefit)
    if declined and request.requested_by and not (request.written_reasons and request.advice_given):
        raise TransitionRefused("declining a request from the young person, a parent or a carer needs written "
                                "reasons and the information and advice given (s58(5))")


def _person_entities(session: Session, person_id: str) -> list[Entity]:
    return list(session.scalars(select(Entity).where(Entity.person_id == person_id)))


def handover(entities: Iterable[Entity], today: date) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The adult referral's content from the person's record, and its items for reconciliation."""
    package: dict[str, Any] = {"person": None, "contacts": [], "relationships": [], "plans": [], "costs": [],
                               "risks": [], "documents": [], "episodes": []}
    items: list[dict[str, str]] = []
    section = {"Referral": "contacts", "Relationship": "relationships", "CarePlan": "plans", "Commitment": "costs",
               "Flag": "risks", "DocumentLink": "documents", "Episode": "episodes"}
    for entity in sorted(entities, key=lambda e: (e.entity_type != "Person", e.entity_type, e.id)):
        doc = orjson.loads(entity.document)
        if entity.entity_type == "Person":
            package["person"] = {"ref": entity.id, **doc}
            items.append({"kind": "person", "ref": entity.id, "summary": "demographics and identifiers"})
            continue
        if entity.entity_type not in section:
            continue
        current = not doc.get("end") or doc["end"] >= today.isoformat()
        if entity.entity_type in ("CarePlan", "Commitment", "Flag", "Episode") and not current:
            continue
        if entity.entity_type == "Episode" and doc.get("service_area") != "childrens":
            continue
        package[section[entity.entity_type]].append({"ref": entity.id, **doc})
        items.append({"kind": ITEM_KIND[entity.entity_type], "ref": entity.id, "summary": _summary(entity, doc)})
    return package, items


def _summary(entity: Entity, doc: dict[str, Any]) -> str:
    """What an item is, without names or money beside names."""
    etype = entity.entity_type
    if etype == "Episode":
        extra = " ".join(str(doc[k]) for k in ("legal_status", "primary_need") if doc.get(k))
        return f"{doc.get('kind')} episode from {doc.get('start')} {extra}".strip()
    if etype == "CarePlan":
        return f"{doc.get('kind')} from {doc.get('start')}"
    if etype == "Commitment":
        return (f"{doc.get('service_type')}: {doc.get('units_per_week')} {doc.get('unit')}/week "
                f"at {doc.get('unit_cost')}")
    if etype == "Relationship":
        return f"relationship: {doc.get('kind')}"
    if etype == "Referral":
        return f"contact on {doc.get('received')}"
    if etype == "Flag":
        return f"risk: {doc.get('category')}"
    return f"document: {doc.get('document_type') or 'document'}"


def _step(session: Session, transition_id: str, stage: str, actor: str, note: str | None = None,
          detail: dict[str, Any] | None = None) -> None:
    session.add(TransitionStep(transition_id=transition_id, at=utcnow(), stage=stage, actor=actor, note=note,
                               detail=detail or {}))


def load(session: Session, transition_id: str) -> tuple[Entity, dict[str, Any]]:
    """A transition's entity and document (NotFound when there is none)."""
    entity = session.get(Entity, transition_id)
    if entity is None or entity.entity_type != "Transition":
        raise NotFound(f"no transition {transition_id}")
    return entity, orjson.loads(entity.document)


def _write(session: Session, transition_id: str, document: dict[str, Any]) -> None:
    try:
        model = Transition.model_validate({**document, "id": transition_id})
    except ValueError as exc:
        raise QuarantineError("INVALID", f"transition {transition_id} would not be valid: {exc}") from exc
    write_canonical(session, model, Provenance(SOURCE, "transitions", transition_id))


def start(session: Session, request: StartRequest, actor: str, today: date) -> str:
    """Record a transition's decisions; hold it with the reason, or ask for the adult referral. Its id."""
    _check(request)
    person = session.get(Entity, request.person_id)
    if person is None or person.entity_type != "Person":
        raise NotFound(f"no person {request.person_id}")
    for entity in session.scalars(select(Entity).where(Entity.person_id == request.person_id,
                                                       Entity.entity_type == "Transition")):
        if orjson.loads(entity.document).get("stage") not in ("closed", "held"):
            raise Conflict(f"person {request.person_id} already has a transition under way ({entity.id})")
    transition_id = str(uuid.uuid4())
    reason = hold_reason(request)
    document: dict[str, Any] = {
        "person_id": request.person_id, "identified": today.isoformat(), "stage": "held" if reason else
        "referral_requested", "likely_needs_after_18": request.likely_needs_after_18,
        "significant_benefit": request.significant_benefit,
        "significant_benefit_reason": request.significant_benefit_reason, "decided": today.isoformat(),
        "consent_route": request.consent_route, "consent_given": request.consent_given,
        "has_capacity": request.has_capacity, "hold_reason": reason, "requested_by": request.requested_by,
        "written_reasons": request.written_reasons, "advice_given": request.advice_given,
        "lead_worker": request.lead_worker, "notes": request.notes,
    }
    items: list[dict[str, str]] = []
    if reason is None:
        package, items = handover(_person_entities(session, request.person_id), today)
        document["handover"] = {"key": referral_key(transition_id), **package}
    _write(session, transition_id, {k: v for k, v in document.items() if v is not None})
    _step(session, transition_id, "identified", actor, "decisions recorded", {
        "likely_needs_after_18": request.likely_needs_after_18, "significant_benefit": request.significant_benefit,
        "consent_route": request.consent_route})
    if reason:
        _step(session, transition_id, "held", actor, reason)
    else:
        _step(session, transition_id, "referral_requested", actor, f"adult referral of {len(items)} items queued")
        for position, item in enumerate(items):
            session.add(TransitionItem(transition_id=transition_id, position=position, kind=item["kind"],
                                       ref=item["ref"], summary=item["summary"][:200], status="pending",
                                       updated_at=utcnow()))
    session.flush()
    return transition_id


def follow(session: Session, adults: AdultsSystem, today: date) -> dict[str, int]:
    """Follow every referral under way in the adults' system; counts of what moved."""
    moved = acknowledged = 0
    for entity in list(session.scalars(select(Entity).where(Entity.entity_type == "Transition"))):
        document = orjson.loads(entity.document)
        if document.get("stage") not in FOLLOWED:
            continue
        referral = adults.referral(referral_key(entity.id))
        if referral is None:
            continue
        acknowledged += reconcile(session, entity.id, referral.get("items", []))
        status = str(referral.get("status"))
        changed = dict(document)
        if referral.get("id"):
            changed["adults_system_id"] = str(referral["id"])
        if referral.get("plan_id"):
            changed["adults_episode_id"] = str(referral["plan_id"])
        if status in ADULT_STAGES and ADULT_STAGES.index(status) >= _rank(document.get("stage")):
            changed["stage"] = status
        if status in PLAN_IN_PLACE:
            changed["continuity_flag"] = False
        if changed != document:
            _write(session, entity.id, changed)
            if changed["stage"] != document.get("stage"):
                moved += 1
                _step(session, entity.id, changed["stage"], "adults-system",
                      f"adults' system referral {changed.get('adults_system_id')} is {status}")
    session.flush()
    return {"moved": moved, "acknowledged": acknowledged}


def _rank(stage: str | None) -> int:
    return ADULT_STAGES.index(stage) if stage in ADULT_STAGES else -1


def reconcile(session: Session, transition_id: str, acks: list[dict[str, Any]]) -> int:
    """Match the adults' system's per-item acknowledgements to the items sent; how many changed."""
    by_ref = {str(a.get("ref")): a for a in acks}
    changed = 0
    for item in session.scalars(select(TransitionItem).where(TransitionItem.transition_id == transition_id)):
        ack = by_ref.get(item.ref)
        if ack is None:
            continue
        status = "acknowledged" if ack.get("status") == "accepted" else "refused"
        receipt, error = ack.get("receipt"), ack.get("reason")
        if (item.status, item.receipt, item.error) != (status, receipt, error):
            item.status, item.receipt, item.error, item.updated_at = status, receipt, error, utcnow()
            changed += 1
    return changed


def close_childrens_case(session: Session, transition_id: str, actor: str) -> None:
    """Close the children's side of a transition: refused until the adult plan is in place (s66)."""
    entity, document = load(session, transition_id)
    if document.get("stage") != "plan_in_place":
        raise Conflict("the children's case stays open until the adult plan is in place (Care Act s66): "
                       f"this transition is at {document.get('stage', 'unknown').replace('_', ' ')}")
    _write(session, entity.id, {**document, "stage": "closed"})
    _step(session, entity.id, "closed", actor, "children's case closed: the adult plan is in place")


def raise_continuity_flags(session: Session, today: date) -> int:
    """Flag each young person 18 or over whose transition has no adult plan yet (s66); how many were raised."""
    raised = 0
    for entity in list(session.scalars(select(Entity).where(Entity.entity_type == "Transition"))):
        document = orjson.loads(entity.document)
        if document.get("stage") in PLAN_IN_PLACE or document.get("continuity_flag"):
            continue
        person = session.get(Entity, document["person_id"])
        born = orjson.loads(person.document).get("birth_date") if person else None
        if not born or age_on(date.fromisoformat(born), today) < 18:
            continue
        _write(session, entity.id, {**document, "continuity_flag": True})
        flag = Flag(person_id=document["person_id"], category="continuity", start=today,
                    text="18 with no adult plan in place: children's services continue (Care Act s66) until the "
                         "adult assessment and what follows are complete.")
        write_canonical(session, flag, Provenance(SOURCE, "continuity", entity.id))
        _step(session, entity.id, document.get("stage", "identified"), "scan", "continuity flag raised at 18 (s66)")
        raised += 1
    session.flush()
    return raised


def view(session: Session, transition_id: str) -> dict[str, Any]:
    """A transition with its history and reconciliation, as the API answers it."""
    entity, document = load(session, transition_id)
    steps = session.scalars(select(TransitionStep).where(TransitionStep.transition_id == transition_id)
                            .order_by(TransitionStep.id))
    items = session.scalars(select(TransitionItem).where(TransitionItem.transition_id == transition_id)
                            .order_by(TransitionItem.position))
    handed = document.pop("handover", None)
    reconciliation = [{"kind": i.kind, "ref": i.ref, "summary": i.summary, "status": i.status,
                       "receipt": i.receipt, "error": i.error} for i in items]
    return {
        "id": entity.id, "version": entity.version, **document,
        "referral_key": referral_key(entity.id) if handed else None,
        "history": [{"at": s.at.isoformat(), "stage": s.stage, "actor": s.actor, "note": s.note}
                    for s in steps],
        "reconciliation": {
            "items": reconciliation,
            "sent": len(reconciliation),
            "acknowledged": sum(1 for i in reconciliation if i["status"] == "acknowledged"),
            "refused": sum(1 for i in reconciliation if i["status"] == "refused"),
            "pending": sum(1 for i in reconciliation if i["status"] == "pending"),
        },
    }


def list_for_person(session: Session, person_id: str) -> list[str]:
    """The ids of a person's transitions."""
    return list(session.scalars(select(Entity.id).where(Entity.person_id == person_id,
                                                        Entity.entity_type == "Transition")))
