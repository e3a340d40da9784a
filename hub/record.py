"""The shared record: finding people and assembling what one caller may see of one person.

Routes call these functions; they apply the access rules (hub.access.rules) to
what the store holds and note every person and resource they hand out on the
request's audit context. Each item carries its provenance: which source systems
said it (from ``source_links``) and when it last changed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from hub.access.policy import Policy
from hub.access.rules import (
    Caller,
    PersonFacts,
    RecordView,
    decide,
    has_relationship,
    is_hidden,
    load_facts,
    require_read,
)
from hub.audit import AuditContext
from hub.errors import Forbidden, HubError, NotFound
from hub.model.validators import normalise_postcode
from hub.pipeline import search_key
from hub.store.tables import Entity, PersonIdentifier, PersonIndex, SourceLink

# Where each entity type sits in the record (fixed: the API's shape does not follow policy renames).
RECORD_SECTIONS: dict[str, str] = {
    "Relationship": "relationships", "Episode": "episodes", "Referral": "referrals", "Assessment": "assessments",
    "CarePlan": "plans", "Commitment": "commitments", "Flag": "flags", "Consent": "consents", "Seal": "seals",
    "DocumentLink": "documents", "HealthEvent": "health_events", "Transition": "transitions",
}
MAX_PAGE = 100


class InvalidQuery(HubError):
    """A search without criteria, or with a criterion the hub cannot read."""

    code = "CAREHUB-E422"
    http_status = 422


@dataclass(frozen=True, slots=True)
class PersonQuery:
    """What a person search asks for; at least one criterion is needed."""

    name: str | None = None
    family: str | None = None
    given: str | None = None
    birth_date: date | None = None
    postcode: str | None = None
    nhs_number: str | None = None
    identifier: str | None = None
    identifier_system: str | None = None
    person_id: str | None = None

    @property
    def by_identifier(self) -> bool:
        """True when the search names the person exactly (NHS number, local id or hub id)."""
        return bool(self.nhs_number or self.identifier or self.person_id)

    def is_empty(self) -> bool:
        """True when no criterion is given."""
        return not any((self.name, self.family, self.given, self.birth_date, self.postcode, self.nhs_number,
                        self.identifier, self.person_id))


@dataclass(slots=True)
class SearchPage:
    """One page of visible people and the cursor to the next page."""

    people: list[dict[str, Any]]
    next_cursor: str | None
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(slots=True)
class LoadedRecord:
    """One person's record as the caller may see it: the view decided and the documents allowed."""

    view: RecordView
    person: dict[str, Any]
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    hidden_sections: list[str] = field(default_factory=list)


def _prefix(column: Any, value: str) -> Any:
    key = search_key(value)
    if not key:
        raise InvalidQuery(f"{value!r} holds no letters to search by")
    return column.like(f"{key}%")


def _person_filter(query: PersonQuery) -> Select[tuple[str, str]]:
    """person_index rows matching the query, with each person's document."""
    stmt = select(PersonIndex.person_id, Entity.document).join(Entity, Entity.id == PersonIndex.person_id).where(
        PersonIndex.status == "active")
    if query.person_id:
        stmt = stmt.where(PersonIndex.person_id == query.person_id)
    if query.nhs_number:
        stmt = stmt.where(PersonIndex.nhs_number == re.sub(r"[\s-]", "", query.nhs_number))
    if query.identifier:
        ident = select(PersonIdentifier.person_id).where(PersonIdentifier.value == query.identifier)
        if query.identifier_system:
            ident = ident.where(PersonIdentifier.system == query.identifier_system)
        stmt = stmt.where(PersonIndex.person_id.in_(ident))
    if query.family:
        stmt = stmt.where(_prefix(PersonIndex.family_name, query.family))
    if query.given:
        stmt = stmt.where(_prefix(PersonIndex.given_name, query.given))
    if query.name:
        for token in query.name.split():
            stmt = stmt.where(or_(_prefix(PersonIndex.family_name, token), _prefix(PersonIndex.given_name, token)))
    if query.birth_date:
        stmt = stmt.where(PersonIndex.birth_date == query.birth_date)
    if query.postcode:
        try:
            stmt = stmt.where(PersonIndex.postcode == normalise_postcode(query.postcode))
        except ValueError:
            outward = re.sub(r"\s+", "", query.postcode).upper()
            if not re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]?", outward):
                raise InvalidQuery(f"{query.postcode!r} is neither a postcode nor an outward code") from None
            stmt = stmt.where(PersonIndex.postcode.like(f"{outward} %"))
    return stmt


def summarise(person_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """A person's search-result line: name, birth date, NHS number, current address."""
    name = (doc.get("names") or [{}])[0]
    address = (doc.get("addresses") or [{}])[0]
    return {
        "id": person_id,
        "name": " ".join([*name.get("given", []), name.get("family") or ""]).strip(),
        "birth_date": doc.get("birth_date"),
        "sex": doc.get("sex", "unknown"),
        "nhs_number": doc.get("nhs_number"),
        "postcode": address.get("postcode"),
        "address": address.get("text") or ", ".join(
            str(p) for p in (address.get("pao_start_number"), address.get("street"), address.get("town"),
                             address.get("postcode")) if p),
    }


def search_people(session: Session, policy: Policy, caller: Caller, query: PersonQuery, audit: AuditContext,
                  *, limit: int = 20, cursor: str | None = None) -> SearchPage:
    """People matching ``query`` that the caller may know exist, in id order after ``cursor``.

    Sealed people are left out unless a seal names the caller, or the caller
    breaks glass *and* searches by an exact identifier; the page is filled from
    further rows so a hidden person leaves no gap or count behind.
    """
    require_read(policy, caller, "Person")
    if query.is_empty():
        raise InvalidQuery("name at least one search criterion")
    limit = max(1, min(limit, MAX_PAGE))
    audit.action = "search"
    base = _person_filter(query).order_by(PersonIndex.person_id)
    found: list[tuple[str, dict[str, Any], PersonFacts]] = []
    after = cursor
    exhausted = False
    while len(found) <= limit and not exhausted:
        stmt = base.limit(limit + 1)
        if after:
            stmt = stmt.where(PersonIndex.person_id > after)
        rows = [(pid, orjson.loads(doc)) for pid, doc in session.execute(stmt)]
        exhausted = len(rows) < limit + 1
        if not rows:
            break
        after = rows[-1][0]
        facts = load_facts(session, [pid for pid, _ in rows])
        for pid, doc in rows:
            f = facts[pid]
            if is_hidden(f, caller) and not (caller.break_glass and query.by_identifier):
                continue
            found.append((pid, doc, f))
    page, more = found[:limit], len(found) > limit
    people, documents = [], {}
    for pid, doc, f in page:
        documents[pid] = doc
        summary = summarise(pid, doc)
        related = has_relationship(policy, f, caller)
        summary["access"] = "open" if related and not is_hidden(f, caller) else "break_glass_required"
        people.append(summary)
        audit.touch_person(pid)
        audit.touch("Patient", pid)
    return SearchPage(people, page[-1][0] if more and page else None, documents)


def person_entities(session: Session, person_id: str) -> list[Entity]:
    """Every canonical entity of one person (the Person itself included)."""
    return list(session.scalars(select(Entity).where(Entity.person_id == person_id)))


def facts_from(person_id: str, entities: Iterable[Entity]) -> PersonFacts:
    """The access facts of a person from their already-loaded entities."""
    facts = PersonFacts(person_id)
    consents: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in entities:
        if e.entity_type not in ("Seal", "Episode", "Consent"):
            continue
        doc = orjson.loads(e.document)
        if e.entity_type == "Seal":
            facts.seals.append(doc)
        elif e.entity_type == "Episode":
            if doc.get("team") and not doc.get("end"):
                facts.teams.add(doc["team"])
        else:
            consents[doc["scope"]].append(doc)
    for scope, docs in consents.items():
        facts.consents[scope] = max(docs, key=lambda d: d.get("recorded", ""))
    return facts


def provenance(session: Session, entity_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """For each entity, the source records that contributed to it, most recent first."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for start in range(0, len(entity_ids), 500):
        chunk = list(entity_ids[start:start + 500])
        for eid, source, stream, source_id, last_seen in session.execute(
            select(SourceLink.entity_id, SourceLink.source, SourceLink.stream, SourceLink.source_id,
                   SourceLink.last_seen).where(SourceLink.entity_id.in_(chunk))
            .order_by(SourceLink.last_seen.desc())
        ):
            found[eid].append({"system": source, "stream": stream, "source_id": source_id,
                               "last_seen": last_seen.isoformat()})
    return found


def merged_away(session: Session, person_id: str) -> tuple[str, dict[str, Any], str] | None:
    """For a person merged into another: the survivor's id, the merged document and its last update."""
    row = session.execute(select(Entity.document, Entity.updated_at).where(
        Entity.id == person_id, Entity.entity_type == "Person")).first()
    if row is None:
        return None
    doc = orjson.loads(row.document)
    survivor = doc.get("merged_into")
    return (survivor, doc, row.updated_at.isoformat()) if survivor else None


def open_record(session: Session, policy: Policy, caller: Caller, person_id: str, audit: AuditContext,
                *, types: frozenset[str] | None = None, with_provenance: bool = True) -> LoadedRecord:
    """The person's record as the caller may see it, each item with its sources and last update.

    ``types`` narrows what is loaded (FHIR reads of one resource type). A sealed
    person the caller may not see is NotFound; someone outside a social worker's
    team is Forbidden unless the caller breaks glass. Both refusals are noted on
    the audit context with their real reason.
    """
    audit.touch_person(person_id)
    entities = person_entities(session, person_id)
    person = next((e for e in entities if e.entity_type == "Person" and e.id == person_id), None)
    if person is None:
        audit.deny("no such person", "not_found")
        raise NotFound(f"no person {person_id}")
    person_doc = orjson.loads(person.document)
    if person_doc.get("merged_into"):
        audit.deny("merged record", "not_found")
        raise NotFound(f"no person {person_id}")
    facts = facts_from(person_id, entities)
    try:
        view = decide(policy, caller, facts)
    except NotFound:
        audit.deny("sealed: the seal does not name the caller's role or team")
        raise
    except Forbidden as exc:
        audit.deny(exc.message)
        raise
    if view.break_glass:
        audit.break_glass_reason = caller.break_glass
    if view.restricted:
        audit.reason = "consent withheld: only demographics shown"
    wanted = view.types if types is None else view.types & types
    allowed = [e for e in entities if e.entity_type in wanted and e.entity_type in RECORD_SECTIONS]
    sources = provenance(session, [person.id, *[e.id for e in allowed]]) if with_provenance else {}
    record = LoadedRecord(view=view, person=_item(person, person_doc, sources))
    for e in sorted(allowed, key=lambda e: e.id):
        record.items.setdefault(e.entity_type, []).append(_item(e, orjson.loads(e.document), sources))
        audit.touch(e.entity_type, e.id)
    audit.touch("Person", person.id)
    readable_anyway = policy.readable_types(caller.role)
    record.hidden_sections = sorted({RECORD_SECTIONS[t] for t in readable_anyway - view.types if t in RECORD_SECTIONS})
    return record


def _item(entity: Entity, doc: dict[str, Any], sources: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"id": entity.id, "type": entity.entity_type, "version": entity.version,
            "updated": entity.updated_at.isoformat(), "sources": sources.get(entity.id, []), "data": doc}


TIMELINE_DATES: dict[str, tuple[str, ...]] = {
    "Episode": ("start",), "Referral": ("received",), "Assessment": ("start",), "CarePlan": ("start",),
    "HealthEvent": ("admitted", "discharged"), "DocumentLink": ("created",), "Transition": ("identified",),
    "Flag": ("start",),
}


def timeline(record: LoadedRecord) -> list[dict[str, Any]]:
    """Episodes, referrals, assessments, plans, health events, documents, transitions, flags: newest first."""
    entries = []
    for etype, items in record.items.items():
        fields = TIMELINE_DATES.get(etype)
        if not fields:
            continue
        for item in items:
            doc = item["data"]
            when = next((doc[f] for f in fields if doc.get(f)), None)
            if when is None:
                continue
            entries.append({"date": str(when)[:10], "type": etype, "id": item["id"],
                            "title": timeline_title(etype, doc), "ongoing": _ongoing(etype, doc),
                            "sources": [s["system"] for s in item["sources"]]})
    entries.sort(key=lambda e: (e["date"], e["id"]), reverse=True)
    return entries


def _ongoing(etype: str, doc: dict[str, Any]) -> bool:
    if etype in ("Episode", "CarePlan", "Flag"):
        return not doc.get("end")
    if etype == "HealthEvent":
        return doc.get("status") == "in-progress"
    return False


def timeline_title(etype: str, doc: dict[str, Any]) -> str:
    """A one-line description of an item for the timeline."""
    area = {"childrens": "Children's", "adults": "Adults'"}.get(doc.get("service_area", ""), "")
    if etype == "Episode":
        return f"{area} {doc['kind']} episode, team {doc.get('team') or 'unallocated'}".strip()
    if etype == "Referral":
        return f"{area} referral from {doc.get('source') or 'unknown source'}".strip()
    if etype == "Assessment":
        return f"{area} {doc['kind']} assessment".strip()
    if etype == "CarePlan":
        return f"{doc['kind'].replace('_', ' ').capitalize()} ({doc.get('status', 'draft').replace('_', ' ')})"
    if etype == "HealthEvent":
        return f"Health: {doc['kind']} at {doc.get('facility') or 'unknown site'}"
    if etype == "DocumentLink":
        return f"Document: {doc['title']}"
    if etype == "Transition":
        return f"Transition to adults' services: {doc['stage'].replace('_', ' ')}"
    return f"Alert: {doc.get('category', '').replace('_', ' ')}"


def contact_summary(record: LoadedRecord) -> dict[str, Any]:
    """The top of the record page: who, where, allocated worker, open episodes, alerts, consent and seal."""
    doc = record.person["data"]
    episodes = [i["data"] for i in record.items.get("Episode", []) if not i["data"].get("end")]
    today = date.today().isoformat()
    alerts = [i["data"] for i in record.items.get("Flag", [])
              if not i["data"].get("end") or i["data"]["end"] >= today]
    summary = summarise(record.person["id"], doc)
    summary.update({
        "allocated_workers": sorted({e["allocated_worker"] for e in episodes if e.get("allocated_worker")}),
        "open_episodes": [{"kind": e["kind"], "team": e.get("team"), "service_area": e["service_area"],
                           "start": e["start"]} for e in episodes],
        "alerts": [{"category": a["category"], "text": a["text"]} for a in alerts],
        "sealed": record.view.sealed,
        "consent_withheld": record.view.consent_withheld,
        "break_glass": record.view.break_glass,
    })
    return summary
