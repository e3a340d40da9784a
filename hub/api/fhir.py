"""The FHIR R4 facade under /fhir: CapabilityStatement, read and search, Patient/$everything, AuditEvent.

Every answer is built by :mod:`hub.fhir` and every error is an OperationOutcome
(:mod:`hub.api.problems`). Searches page with ``_count`` and a keyset cursor
(``_cursor``, the last id returned), so a ``next`` link never drops or repeats
an entry however the data changes between pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.resource import Resource
from sqlalchemy import select

from hub.access.decision import Access
from hub.access.rules import require_read
from hub.api.deps import AuditDep, CurrentUser, PolicyDep, StoreDep
from hub.api.params import row_cursor
from hub.api.problems import FHIR_JSON
from hub.audit import AuditQuery, count_events, get_event, search_events, subjects_of
from hub.errors import Forbidden, HubError, NotFound
from hub.fhir import NHS_NUMBER, RESOURCE_TYPES, FhirBuilder, capability_statement, search_bundle, to_json
from hub.fhir_search import (
    MAX_COUNT,
    BadSearch,
    DateValue,
    ReferenceValue,
    Search,
    StringValue,
    TokenValue,
    parse_search,
    wants_lenient,
)
from hub.record import (
    MAX_PAGE,
    LoadedRecord,
    Match,
    PersonQuery,
    count_people,
    merged_away,
    open_record,
    owners,
    search_people,
)
from hub.store.tables import Entity

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})


class NotAcceptable(HubError):
    """The client asked for a format the facade does not write (it writes FHIR JSON only)."""

    code = "CAREHUB-E406"
    http_status = 406


def json_only(request: Request) -> None:
    """Refuse (406) a request for XML or any other format than FHIR JSON, by ``_format`` or ``Accept``."""
    wanted = request.query_params.get("_format")
    if wanted is not None and wanted.split(";")[0].strip().lower() not in JSON_FORMATS:
        raise NotAcceptable(f"_format={wanted[:40]} is not offered: this server writes application/fhir+json only")
    accept = request.headers.get("accept")
    if accept and wanted is None:
        ranges = {r.split(";")[0].strip().lower() for r in accept.split(",")}
        if not ranges & (JSON_FORMATS | {"*/*", "application/*", ""}):
            raise NotAcceptable("this server writes application/fhir+json only (Accept names no JSON type)")


router = APIRouter(prefix="/fhir", tags=["FHIR R4"], dependencies=[Depends(json_only)])
CountParam = Annotated[int, Query(alias="_count", ge=0, description="Page size (0: the total only; capped).")]
CursorParam = Annotated[str | None, Query(alias="_cursor", description="From a next link: the last id returned.")]


def fhir_response(payload: dict[str, Any], status: int = 200) -> Response:
    """FHIR JSON, pre-serialised."""
    return Response(orjson.dumps(payload), status_code=status, media_type=FHIR_JSON)


def builder(request: Request) -> FhirBuilder:
    """The resource builder with the council's identifier base and its teams' names."""
    return FhirBuilder(request.app.state.settings.auth.identifier_base, request.app.state.policy.team_name)


def base_url(request: Request) -> str:
    """The facade's base URL as the client reached it."""
    return str(request.base_url).rstrip("/") + "/fhir"


def read_search(request: Request, resource_type: str, default_count: int, max_count: int = MAX_COUNT) -> Search:
    """The request's search, read by the one parser (``Prefer: handling=lenient`` honoured)."""
    return parse_search(resource_type, request.query_params.multi_items(), base=base_url(request),
                        lenient=wants_lenient(request.headers.get("prefer")), default_count=default_count,
                        max_count=max_count)


def page_links(request: Request, search: Search, next_cursor: str | None) -> tuple[str, str | None]:
    """The self link (the query as applied) and, when there is more, the next link (cursor moved on)."""
    here = f"{base_url(request)}{request.url.path.removeprefix('/fhir')}"
    query = search.query_string()
    own = f"{here}?{query}" if query else here
    return own, (f"{here}?{search.query_string(next_cursor)}" if next_cursor is not None else None)


def searchset(request: Request, search: Search, entries: list[tuple[Resource, str]], total: int | None,
              next_cursor: str | None = None) -> Response:
    """A searchset Bundle answer: the matches (none when only the total was asked for) and the total (left out
    for ``_total=none``)."""
    self_url, next_url = page_links(request, search, next_cursor)
    return fhir_response(to_json(search_bundle(entries, base_url(request), self_url, next_url,
                                               total if search.wants_total else None)))


@router.get("/metadata", summary="CapabilityStatement (FHIR 4.0.1)")
def metadata(request: Request) -> Response:
    """What this facade supports; public, like every FHIR server's."""
    return fhir_response(to_json(capability_statement(base_url(request))))


@router.get("/.well-known/smart-configuration", summary="SMART discovery: not offered (404, public)")
def smart_configuration() -> Response:
    """The hub runs no authorization server of its own: callers bring bearer tokens from the council's issuers,
    so there are no SMART endpoints to publish. Answered 404 (an OperationOutcome) without a token."""
    raise NotFound("this server publishes no SMART configuration: send a bearer token from one of the council's "
                   "issuers (see the CapabilityStatement's security)")


@router.get("/Patient", summary="Search Patient")
def search_patients(request: Request, session: StoreDep, policy: PolicyDep, caller: CurrentUser,
                    audit: AuditDep) -> Response:
    """Patients by identifier, name, family, given, birthdate, address-postalcode, gender or _id
    (the parameters, modifiers and prefixes the CapabilityStatement declares)."""
    search = read_search(request, "Patient", 20, MAX_PAGE)
    query = patient_query(search, builder(request).identifier_base)
    audit.action = "search"
    if query is None:
        return searchset(request, search, [], 0)
    if query.is_empty():
        raise BadSearch("name at least one search parameter")
    total = count_people(session, policy, caller, query) if search.wants_total else None
    if search.summary_only:
        return searchset(request, search, [], total)
    page = search_people(session, policy, caller, query, audit, limit=search.count, cursor=search.cursor,
                         with_updated=True)
    build = builder(request)
    entries: list[tuple[Resource, str]] = []
    for p in page.people:
        if p["access"] == "open":  # the meta a read has
            patient = build.patient(p["id"], page.documents[p["id"]], page.updated.get(p["id"]))
        else:
            # As /api's search: a reduced entry (name, birth date, sex) saying the record needs break glass.
            patient = build.patient(p["id"], page.documents[p["id"]])
            patient.meta = Meta.model_validate({"tag": [{
                "system": f"{build.identifier_base}/access", "code": p["access"],
                "display": "Outside your usual access: break glass to read this record"}]})
        entries.append((patient, "match"))
    return searchset(request, search, entries, total, page.next_cursor)


def patient_query(search: Search, identifier_base: str) -> PersonQuery | None:
    """The store's person query for a Patient search; None when no person can match (a criterion whose every
    alternative names something the hub does not hold)."""
    clauses: list[tuple[Match, ...]] = []
    family: str | None = None
    for criterion in search.criteria:
        name, op = criterion.parameter.name, criterion.modifier or "prefix"
        alternatives: list[Match] = []
        for value in criterion.values:
            if isinstance(value, StringValue):
                field_name = {"address-postalcode": "postcode"}.get(name, name)
                words = tuple(value.text.split()) if name == "name" else (value.text,)
                alternatives.append(Match(field_name, op, words))
            elif isinstance(value, DateValue):
                alternatives.append(Match("birth_date", value.prefix, (value.first_day(), value.last_day())))
            elif isinstance(value, TokenValue):
                alternatives.extend(_token_matches(name, value, identifier_base))
        if not alternatives:
            return None
        if (len(alternatives) == 1 and alternatives[0].field == "family" and alternatives[0].op == "prefix"
                and family is None):
            family = alternatives[0].values[0]  # the store ranges over the family-name index for this one
            continue
        clauses.append(tuple(alternatives))
    return PersonQuery(family=family, all_of=tuple(clauses))


def _token_matches(name: str, token: TokenValue, identifier_base: str) -> list[Match]:
    code, system = token.code, token.system
    if name == "_id":
        return [Match("person_id", "eq", (code,))] if code and system is None else []
    if name == "gender":
        known = system in (None, "http://hl7.org/fhir/administrative-gender")
        return [Match("sex", "eq", (code,))] if code and known else []
    if system is None:
        return [Match("nhs_number", "eq", (code,)), Match("identifier", "eq", (code,))] if code else []
    if system == NHS_NUMBER:
        return [Match("nhs_number", "eq" if code else "present", (code,) if code else ())]
    prefix = identifier_base.rstrip("/") + "/"
    if system.startswith(prefix):
        local = system.removeprefix(prefix)
        return [Match("identifier", "in_system", (local, code)) if code else Match("identifier", "system", (local,))]
    return []


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
    count = min(count, MAX_COUNT)
    record = open_record(session, policy, caller, pid, audit, with_provenance=False)
    every = _everything_entries(request, record)
    entries = [e for e in every if cursor is None or e[0] > cursor]
    page, more = entries[:count], len(entries) > count
    search = Search("Patient", count=count, applied=[("_count", str(count))])
    return searchset(request, search, [(r, "match") for _, r in page], len(every),
                     page[-1][0] if more and page else None)


@router.get("/AuditEvent", summary="Search AuditEvent (auditors)")
def search_audit(request: Request, session: StoreDep, policy: PolicyDep, caller: CurrentUser,
                 audit: AuditDep) -> Response:
    """The audit trail as AuditEvents, by patient, agent (user id) and date range, oldest first."""
    require_read(policy, caller, "AuditEvent")
    audit.action = "search"
    search = read_search(request, "AuditEvent", 50)
    after = row_cursor(search.cursor) if search.cursor else None
    if search.cursor and after is None:
        raise BadSearch("_cursor is not one this server gave")
    patient = next((c.values[0] for c in search.of("patient")), None)
    agent = next((c.values[0] for c in search.of("agent")), None)
    since, until = _date_range([c.values[0] for c in search.of("date")])
    if isinstance(patient, ReferenceValue) and patient.foreign:
        return searchset(request, search, [], 0)
    query = AuditQuery(person_id=patient.id if isinstance(patient, ReferenceValue) else None,
                       user_id=agent.id if isinstance(agent, ReferenceValue) else None, since=since, until=until)
    total = count_events(session, query) if search.wants_total else None
    if search.summary_only:
        return searchset(request, search, [], total)
    rows = search_events(session, query, after=after, limit=search.count + 1)
    page, more = rows[:search.count], len(rows) > search.count
    subjects = subjects_of(session, [r.id for r in page])
    build = builder(request)
    entries: list[tuple[Resource, str]] = []
    for r in page:
        entries.append((build.audit_event(r, subjects[r.id], policy.purpose_code(r.purpose or "")), "match"))
        audit.touch("AuditEvent", r.event_id)
    return searchset(request, search, entries, total, str(page[-1].id) if more else None)


def _date_range(values: list[Any]) -> tuple[datetime | None, datetime | None]:
    """From ``recorded`` (inclusive) until (exclusive), for date criteria that must all hold."""
    since: datetime | None = None
    until: datetime | None = None
    for value in values:
        assert isinstance(value, DateValue)
        low = {"eq": value.start, "ge": value.start, "gt": value.end, "sa": value.end}.get(value.prefix)
        high = {"eq": value.end, "le": value.end, "lt": value.start, "eb": value.start}.get(value.prefix)
        if low is not None:
            since = low if since is None else max(since, low)
        if high is not None:
            until = high if until is None else min(until, high)
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
                                "DocumentReference by patient (or subject) and _id")
def search_resources(rtype: str, request: Request, session: StoreDep, policy: PolicyDep, caller: CurrentUser,
                     audit: AuditDep) -> Response:
    """Patients' resources of one type, ordered by id; ``_include=<Type>:patient`` (or ``:subject``) adds the
    Patient of each match. An unknown patient, or one on another server, matches nothing."""
    etype = _record_type(rtype)
    require_read(policy, caller, etype)
    audit.action = "search"
    search = read_search(request, rtype, 50)
    people: set[str] | None = None
    for criterion in search.of("patient") + search.of("subject"):
        named = {v.id for v in criterion.values if isinstance(v, ReferenceValue) and not v.foreign
                 and v.type in (None, "Patient")}
        people = named if people is None else people & named
    ids: set[str] | None = None
    for criterion in search.of("_id"):
        named = {v.code for v in criterion.values if isinstance(v, TokenValue) and v.code and v.system is None}
        ids = named if ids is None else ids & named
    if people is None and ids is None:
        raise BadSearch(f"search {rtype} by patient, subject or _id")
    if ids is not None:
        owning = owners(session, etype, ids)
        people = owning if people is None else people & owning
    items: list[dict[str, Any]] = []
    records: dict[str, LoadedRecord] = {}
    access = Access(session, policy, caller, audit)
    for pid in sorted(people or ()):
        # A patient the caller may not know of matches nothing, exactly as an id never held.
        disclosure = access.person(pid)
        if not disclosure.visible:
            audit.reason = disclosure.reason
            continue
        record = open_record(session, policy, caller, pid, audit, types=frozenset({etype}), with_provenance=False)
        if etype not in record.view.types:
            audit.deny(record.view.consent_withheld or "role")
            raise Forbidden(record.view.consent_withheld or f"the role {caller.role} may not read {rtype}")
        records[pid] = record
        items += [i for i in record.items.get(etype, []) if ids is None or i["id"] in ids]
    items.sort(key=lambda i: i["id"])
    if search.summary_only:
        return searchset(request, search, [], len(items))
    after = [i for i in items if search.cursor is None or i["id"] > search.cursor]
    page, more = after[:search.count], len(after) > search.count
    build = builder(request)
    entries: list[tuple[Resource, str]] = [(build.build(etype, i), "match") for i in page]
    if search.includes:
        for pid in sorted({i["data"].get("person_id") for i in page} & set(records)):
            person = records[pid].person
            entries.append((build.patient(pid, person["data"], person["updated"]), "include"))
    return searchset(request, search, entries, len(items), page[-1]["id"] if more and page else None)


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
