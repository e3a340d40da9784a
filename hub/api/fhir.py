"""The FHIR R4 facade under /fhir: CapabilityStatement, read and search, Patient/$everything, AuditEvent.

Every answer is built by :mod:`hub.fhir` and every error is an OperationOutcome
(:mod:`hub.api.problems`). Searches page with ``_count`` and a keyset cursor
(``_cursor``, the last id returned), so a ``next`` link never drops or repeats
an entry however the data changes between pages.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from fhir.resources.R4B.resource import Resource
from sqlalchemy import select

from hub.access.decision import Access
from hub.access.rules import require_read
from hub.api.deps import AuditDep, CurrentUser, PolicyDep, StoreDep
from hub.api.params import row_cursor
from hub.api.problems import FHIR_JSON
from hub.audit import AuditQuery, get_event, search_events, subjects_of
from hub.errors import Forbidden, HubError, NotFound
from hub.fhir import (
    NHS_NUMBER,
    RESOURCE_TYPES,
    FhirBuilder,
    capability_statement,
    search_bundle,
    to_json,
)
from hub.model.validators import is_valid_nhs_number
from hub.record import LoadedRecord, PersonQuery, merged_away, open_record, search_people
from hub.store.tables import Entity

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])
CountParam = Annotated[int, Query(alias="_count", ge=1, le=500, description="Page size.")]
CursorParam = Annotated[str | None, Query(alias="_cursor", description="From a next link: the last id returned.")]


class BadSearch(HubError):
    """A FHIR search the facade cannot answer (becomes an OperationOutcome with code invalid)."""

    code = "CAREHUB-E400"
    http_status = 400


def fhir_response(payload: dict[str, Any], status: int = 200) -> Response:
    """FHIR JSON, pre-serialised."""
    return Response(orjson.dumps(payload), status_code=status, media_type=FHIR_JSON)


def builder(request: Request) -> FhirBuilder:
    """The resource builder with the council's identifier base."""
    return FhirBuilder(request.app.state.settings.auth.identifier_base)


def base_url(request: Request) -> str:
    """The facade's base URL as the client reached it."""
    return str(request.base_url).rstrip("/") + "/fhir"


def page_links(request: Request, next_cursor: str | None) -> tuple[str, str | None]:
    """The self link and, when there is more, the next link (same query, cursor moved on)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
    self_url = f"{base_url(request)}{request.url.path.removeprefix('/fhir')}"
    own = f"{self_url}?{urlencode(params)}" if params else self_url
    if next_cursor is None:
        return own, None
    return own, f"{self_url}?{urlencode([*params, ('_cursor', next_cursor)])}"


def patient_id(reference: str) -> str:
    """The id in a patient search parameter ('Patient/123' or '123')."""
    return reference.removeprefix("Patient/").strip()


@router.get("/metadata", summary="CapabilityStatement (FHIR 4.0.1)")
def metadata(request: Request) -> Response:
    """What this facade supports; public, like every FHIR server's."""
    return fhir_response(to_json(capability_statement(base_url(request))))


@router.get("/Patient", summary="Search Patient")
def search_patients(
    request: Request, session: StoreDep, policy: PolicyDep, caller: CurrentUser, audit: AuditDep,
    count: CountParam = 20, cursor: CursorParam = None,
    identifier: str | None = None, name: str | None = None, family: str | None = None, given: str | None = None,
    birthdate: str | None = None, postalcode: Annotated[str | None, Query(alias="address-postalcode")] = None,
    rid: Annotated[str | None, Query(alias="_id")] = None,
) -> Response:
    """Patients by identifier (system|value or bare), name, family, given, birthdate, postcode or _id."""
    nhs = local = system = None
    if identifier:
        system, _, value = identifier.rpartition("|")
        if system == NHS_NUMBER or (not system and value.isdigit() and is_valid_nhs_number(value)):
            nhs = value
        elif system:
            prefix = builder(request).identifier_base + "/"
            if not system.startswith(prefix):
                return _empty_bundle(request)
            local, system = value, system.removeprefix(prefix)
        else:
            local = value
    born = None
    if birthdate:
        try:
            born = datetime.fromisoformat(birthdate.removeprefix("eq")).date()
        except ValueError as exc:
            raise BadSearch(f"birthdate {birthdate!r} is not a date (YYYY-MM-DD)") from exc
    query = PersonQuery(name=name, family=family, given=given, birth_date=born, postcode=postalcode, nhs_number=nhs,
                        identifier=local, identifier_system=system or None if local else None, person_id=rid)
    if query.is_empty():
        raise BadSearch("name at least one search parameter")
    page = search_people(session, policy, caller, query, audit, limit=count, cursor=cursor)
    build = builder(request)
    entries: list[tuple[Resource, str]] = []
    for p in page.people:
        patient = build.patient(p["id"], page.documents[p["id"]])
        if p["access"] != "open":
            # As /api's search: a reduced entry (name, birth date, sex) saying the record needs break glass.
            patient.meta = {"tag": [{"system": f"{build.identifier_base}/access", "code": p["access"],
                                     "display": "Outside your usual access: break glass to read this record"}]}
        entries.append((patient, "match"))
    self_url, next_url = page_links(request, page.next_cursor)
    return fhir_response(to_json(search_bundle(entries, base_url(request), self_url, next_url)))


def _empty_bundle(request: Request) -> Response:
    self_url, _ = page_links(request, None)
    return fhir_response(to_json(search_bundle([], base_url(request), self_url, None)))


@router.get("/Patient/{pid}", summary="Read Patient")
def read_patient(pid: str, request: Request, session: StoreDep, policy: PolicyDep, caller: CurrentUser,
                 audit: AuditDep) -> Response:
    """One Patient (seals and relationship rules apply; a sealed record is simply not found).

    A registration merged into another is shown inactive with a ``replaced-by``
    link to the survivor, to whoever may see the survivor.
    """
    audit.touch("Patient", pid)
    merged = merged_away(session, pid)
    if merged is not None:
        # Decided by the survivor's facts, answered in the asked id's name only: a survivor the caller may not
        # know of leaves the same 404 as an id never held.
        _, doc, updated = merged
        access = Access(session, policy, caller, audit)
        access.require(access.person(pid))
        return fhir_response(to_json(builder(request).patient(pid, doc, updated)))
    record = open_record(session, policy, caller, pid, audit, types=frozenset(), with_provenance=False)
    return fhir_response(to_json(builder(request).patient(pid, record.person["data"], record.person["updated"])))


def _everything_entries(request: Request, record: LoadedRecord) -> list[tuple[str, Resource]]:
    build = builder(request)
    entries: list[tuple[str, Resource]] = [
        (f"Patient/{record.person['id']}",
         build.patient(record.person["id"], record.person["data"], record.person["updated"]))]
    for rtype, etype in RESOURCE_TYPES.items():
        if etype == "Person":
            continue
        for item in record.items.get(etype, []):
            entries.append((f"{rtype}/{item['id']}", build.build(etype, item)))
    entries.sort(key=lambda e: e[0])
    return entries


@router.get("/Patient/{pid}/$everything", summary="Everything the caller may see about one patient")
def everything(pid: str, request: Request, session: StoreDep, policy: PolicyDep, caller: CurrentUser,
               audit: AuditDep, count: CountParam = 500, cursor: CursorParam = None) -> Response:
    """Patient, related people, episodes, plans, encounters, flags, consents and documents (paged)."""
    record = open_record(session, policy, caller, pid, audit, with_provenance=False)
    entries = [e for e in _everything_entries(request, record) if cursor is None or e[0] > cursor]
    page, more = entries[:count], len(entries) > count
    self_url, next_url = page_links(request, page[-1][0] if more else None)
    bundle = search_bundle([(r, "match") for _, r in page], base_url(request), self_url, next_url)
    return fhir_response(to_json(bundle))


@router.get("/AuditEvent", summary="Search AuditEvent (auditors)")
def search_audit(
    request: Request, session: StoreDep, policy: PolicyDep, caller: CurrentUser, audit: AuditDep,
    count: CountParam = 50, cursor: CursorParam = None,
    patient: str | None = None, agent: str | None = None,
    date: Annotated[list[str] | None, Query(description="ge/gt/le/lt/eq + YYYY-MM-DD[Thh:mm:ss+zz:zz]")] = None,
) -> Response:
    """The audit trail as AuditEvents, by patient, agent (user id) and date range, oldest first."""
    require_read(policy, caller, "AuditEvent")
    audit.action = "search"
    since, until = _date_range(date or [])
    after = row_cursor(cursor) if cursor else None
    if cursor and after is None:
        raise BadSearch("_cursor is not one this server gave")
    query = AuditQuery(person_id=patient_id(patient) if patient else None,
                       user_id=agent.rpartition("/")[2] if agent else None, since=since, until=until)
    rows = search_events(session, query, after=after, limit=count + 1)
    page, more = rows[:count], len(rows) > count
    subjects = subjects_of(session, [r.id for r in page])
    build = builder(request)
    entries: list[tuple[Resource, str]] = []
    for r in page:
        entries.append((build.audit_event(r, subjects[r.id], policy.purpose_code(r.purpose or "")), "match"))
        audit.touch("AuditEvent", r.event_id)
    self_url, next_url = page_links(request, str(page[-1].id) if more else None)
    return fhir_response(to_json(search_bundle(entries, base_url(request), self_url, next_url)))


def _date_range(values: list[str]) -> tuple[datetime | None, datetime | None]:
    since = until = None
    for raw in values:
        prefix, text = (raw[:2], raw[2:]) if raw[:2] in ("ge", "gt", "le", "lt", "eq") else ("eq", raw)
        try:
            if len(text) == 10:
                day = datetime.fromisoformat(text).date()
                start = datetime.combine(day, time.min, UTC)
                end = datetime.combine(day, time.max, UTC)
            else:
                start = end = datetime.fromisoformat(text)
                if start.tzinfo is None:
                    start = end = start.replace(tzinfo=UTC)
        except ValueError as exc:
            raise BadSearch(f"date {raw!r} is not a FHIR date") from exc
        if prefix in ("ge", "gt", "eq"):
            since = start if prefix != "gt" else end
        if prefix in ("le", "lt", "eq"):
            until = end if prefix != "lt" else start
    return since, until


@router.get("/AuditEvent/{event_id}", summary="Read AuditEvent (auditors)")
def read_audit(event_id: str, request: Request, session: StoreDep, policy: PolicyDep, caller: CurrentUser,
               audit: AuditDep) -> Response:
    """One audit row as an AuditEvent."""
    require_read(policy, caller, "AuditEvent")
    row = get_event(session, event_id)
    audit.touch("AuditEvent", event_id)
    resource = builder(request).audit_event(row, subjects_of(session, [row.id])[row.id],
                                            policy.purpose_code(row.purpose or ""))
    return fhir_response(to_json(resource))


def _record_type(rtype: str) -> str:
    etype = RESOURCE_TYPES.get(rtype)
    if etype is None or etype == "Person":
        raise NotFound(f"this server has no resource type {rtype}")
    return etype


@router.get("/{rtype}", summary="Search RelatedPerson, EpisodeOfCare, CarePlan, Encounter, Flag, Consent, "
                                "DocumentReference by patient")
def search_resources(
    rtype: str, request: Request, session: StoreDep, policy: PolicyDep, caller: CurrentUser, audit: AuditDep,
    count: CountParam = 50, cursor: CursorParam = None, patient: str | None = None,
    subject: str | None = None, rid: Annotated[str | None, Query(alias="_id")] = None,
    include: Annotated[list[str] | None, Query(alias="_include")] = None,
) -> Response:
    """A patient's resources of one type, ordered by id; ``_include=<Type>:patient`` adds the Patient."""
    etype = _record_type(rtype)
    require_read(policy, caller, etype)
    audit.action = "search"
    who = patient or subject
    if who is None and rid is not None:
        found = session.scalar(select(Entity.person_id).where(Entity.id == rid, Entity.entity_type == etype))
        if found is None:
            return _empty_bundle(request)
        who = found
    if who is None:
        raise BadSearch(f"search {rtype} by patient (or _id)")
    # A patient the caller may not know of matches nothing, exactly as an id never held.
    disclosure = Access(session, policy, caller, audit).person(patient_id(who))
    if not disclosure.visible:
        audit.reason = disclosure.reason
        return _empty_bundle(request)
    record = open_record(session, policy, caller, patient_id(who), audit, types=frozenset({etype}),
                         with_provenance=False)
    if etype not in record.view.types:
        audit.deny(record.view.consent_withheld or "role")
        raise Forbidden(record.view.consent_withheld or f"the role {caller.role} may not read {rtype}")
    items = [i for i in record.items.get(etype, []) if (rid is None or i["id"] == rid)
             and (cursor is None or i["id"] > cursor)]
    page, more = items[:count], len(items) > count
    build = builder(request)
    entries: list[tuple[Resource, str]] = [(build.build(etype, i), "match") for i in page]
    if include and any(inc.endswith((":patient", ":subject")) for inc in include) and page:
        entries.append((build.patient(record.person["id"], record.person["data"], record.person["updated"]),
                        "include"))
    self_url, next_url = page_links(request, page[-1]["id"] if more else None)
    return fhir_response(to_json(search_bundle(entries, base_url(request), self_url, next_url)))


@router.get("/{rtype}/{rid}", summary="Read RelatedPerson, EpisodeOfCare, CarePlan, Encounter, Flag, Consent, "
                                      "DocumentReference")
def read_resource(rtype: str, rid: str, request: Request, session: StoreDep, policy: PolicyDep,
                  caller: CurrentUser, audit: AuditDep) -> Response:
    """One resource; the rules of its patient's record apply."""
    etype = _record_type(rtype)
    require_read(policy, caller, etype)
    person = session.scalar(select(Entity.person_id).where(Entity.id == rid, Entity.entity_type == etype))
    if person is None:
        audit.deny("no such resource", "not_found")
        raise NotFound(f"no {rtype} {rid}")
    access = Access(session, policy, caller, audit)
    disclosure = access.person(person)
    if not disclosure.visible:  # the same answer as a resource never held
        access.refuse(disclosure, shown_as=f"no {rtype} {rid}")
    record = open_record(session, policy, caller, person, audit, types=frozenset({etype}), with_provenance=False)
    if etype not in record.view.types:
        audit.deny("consent withheld")
        raise Forbidden(record.view.consent_withheld or f"the role {caller.role} may not read {rtype}")
    item = next((i for i in record.items.get(etype, []) if i["id"] == rid), None)
    if item is None:
        raise NotFound(f"no {rtype} {rid}")
    return fhir_response(to_json(builder(request).build(etype, item)))
