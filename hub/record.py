"""The shared record: finding people and assembling what one caller may see of one person.

Routes call these functions; they apply the access rules (hub.access.rules) to
what the store holds and note every person and resource they hand out on the
request's audit context. Each item carries its provenance: which source systems
said it (from ``source_links``) and when it last changed.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Integer, String, and_, bindparam, false, func, or_, select, type_coerce, union
from sqlalchemy.orm import Session, aliased

from hub.access.decision import OPEN, UNKNOWN, Access, Disclosure, Subject, held_seals, load_subjects
from hub.access.policy import Policy
from hub.access.rules import Caller, PersonFacts, RecordView, require_read
from hub.audit import AuditContext
from hub.errors import HubError
from hub.model.validators import normalise_postcode
from hub.pipeline import search_key
from hub.store.bulk import PreparedStatement
from hub.store.db import Reader
from hub.store.identity import OPEN as REVIEW_OPEN
from hub.store.identity import MatchReview
from hub.store.tables import Entity, IsoTimestamp, PersonIdentifier, PersonIndex, SourceLink

# Where each entity type sits in the record (fixed: the API's shape does not follow policy renames).
RECORD_SECTIONS: dict[str, str] = {
    "Relationship": "relationships", "Episode": "episodes", "Referral": "referrals", "Assessment": "assessments",
    "CarePlan": "plans", "Commitment": "commitments", "Flag": "flags", "Consent": "consents", "Seal": "seals",
    "DocumentLink": "documents", "HealthEvent": "health_events", "Transition": "transitions",
}
MAX_PAGE = 100
# A name search's words each add a condition to the query; past a handful, no real name is meant.
MAX_NAME_WORDS = 8


class InvalidQuery(HubError):
    """A search without criteria, or with a criterion the hub cannot read."""

    code = "CAREHUB-E422"
    http_status = 422


@dataclass(frozen=True, slots=True)
class Match:
    """One way a person may match a criterion: a field, how it is compared, and the values compared with.

    ``field`` and ``op``: ``person_id``/``nhs_number``/``sex`` ``eq`` (one value); ``identifier`` ``eq``
    (a value in any system), ``in_system`` (system, value) or ``system`` (any value of it); ``family``/
    ``given`` ``prefix``/``contains`` (one name); ``name`` ``prefix``/``contains`` (words, each starting or
    inside a given or family name); ``birth_date`` with a FHIR date prefix (first and last day of the range);
    ``postcode`` ``prefix``/``contains``/``exact`` (one value); ``nothing`` (never matches: a system the hub
    does not hold).
    """

    field: str
    op: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class PersonQuery:
    """What a person search asks for; at least one criterion is needed.

    The named fields are the canonical API's criteria; ``all_of`` holds criteria
    built elsewhere (the FHIR facade's), each a tuple of :class:`Match` of which
    any may hold (OR), all of them together (AND) with the named fields.
    """

    name: str | None = None
    family: str | None = None
    given: str | None = None
    birth_date: date | None = None
    postcode: str | None = None
    nhs_number: str | None = None
    identifier: str | None = None
    identifier_system: str | None = None
    person_id: str | None = None
    all_of: tuple[tuple[Match, ...], ...] = ()

    @property
    def by_identifier(self) -> bool:
        """True when the search names the person exactly (NHS number, local id or hub id)."""
        exact = any(clause and all(m.field in ("nhs_number", "identifier", "person_id") and m.op == "eq"
                                   for m in clause) for clause in self.all_of)
        return bool(self.nhs_number or self.identifier or self.person_id or exact)

    def is_empty(self) -> bool:
        """True when no criterion is given."""
        return not any((self.name, self.family, self.given, self.birth_date, self.postcode, self.nhs_number,
                        self.identifier, self.person_id, self.all_of))


@dataclass(slots=True)
class SearchPage:
    """One page of visible people and the cursor to the next page."""

    people: list[dict[str, Any]]
    next_cursor: str | None
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    updated: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class LoadedRecord:
    """One person's record as the caller may see it: the view decided and the documents allowed."""

    view: RecordView
    person: dict[str, Any]
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    hidden_sections: list[str] = field(default_factory=list)
    access: Access | None = None

    def identity(self, links: dict[str, Any]) -> dict[str, Any]:
        """The person's identity links as the caller may see them (no one they may not know of named)."""
        return self.access.person_links(links) if self.access is not None else links


def _like_prefix(value: str) -> str:
    """A LIKE pattern for names starting with ``value`` (as names are indexed: upper-case letters only)."""
    key = search_key(value)
    if not key:
        raise InvalidQuery(f"{value!r} holds no letters to search by")
    return f"{key}%"


def _criteria(query: PersonQuery, *, family_by_index: bool = False) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The shape of the query's filter (which criteria, how) and the values to bind into it.

    ``family_by_index`` bounds the family name as a range too, so the database
    can walk its index (see :func:`_few_by_family`): family names are indexed
    as upper-case letters only, where a prefix is exactly a range. The shape
    picks a statement built once (:func:`_ids_statement`); the values go in as
    its parameters.
    """
    shape: list[Any] = []
    params: dict[str, Any] = {}
    if query.family and family_by_index:
        key = search_key(query.family)
        if key:
            shape.append("family_range")
            params.update(family_low=key, family_high=_range_end(key))
    if query.person_id:
        shape.append("person_id")
        params["person_id"] = query.person_id
    if query.nhs_number:
        shape.append("nhs_number")
        params["nhs_number_0"] = re.sub(r"[\s-]", "", query.nhs_number)
    if query.identifier:
        shape.append("identifier")
        params["identifier"] = query.identifier
        if query.identifier_system:
            shape.append("identifier_system")
            params["identifier_system"] = query.identifier_system
    if query.family:
        shape.append("family")
        params["family"] = _like_prefix(query.family)
    if query.given:
        shape.append("given")
        params["given"] = _like_prefix(query.given)
    if query.name:
        tokens = query.name.split()
        if len(tokens) > MAX_NAME_WORDS:
            raise InvalidQuery(f"a name search takes at most {MAX_NAME_WORDS} words; this one has {len(tokens)}")
        shape.append(("name", len(tokens)))
        params.update({f"name_{n}": _like_prefix(token) for n, token in enumerate(tokens)})
    if query.birth_date:
        shape.append("birth_date")
        params["birth_date"] = query.birth_date
    if query.postcode:
        try:
            params["postcode"] = normalise_postcode(query.postcode)
            shape.append("postcode")
        except ValueError:
            outward = re.sub(r"\s+", "", query.postcode).upper()
            if not re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]?", outward):
                raise InvalidQuery(f"{query.postcode!r} is neither a postcode nor an outward code") from None
            params["postcode"] = f"{outward} %"
            shape.append("outward_code")
    for i, clause in enumerate(query.all_of):
        shape.append(("any_of", tuple((m.field, m.op, len(_match_values(m))) for m in clause)))
        for j, match in enumerate(clause):
            for k, value in enumerate(_match_values(match)):
                params[f"m{i}_{j}_{k}"] = value
    return tuple(shape), params


def _match_values(match: Match) -> tuple[Any, ...]:
    """The bound values of one match, as the index holds them (names folded, postcodes normalised)."""
    if match.field in ("family", "given", "name"):
        if len(match.values) > MAX_NAME_WORDS:
            raise InvalidQuery(f"a name search takes at most {MAX_NAME_WORDS} words; this one has "
                               f"{len(match.values)}")
        keys = tuple(search_key(v) or "" for v in match.values)
        if not all(keys):
            raise InvalidQuery(f"{' '.join(match.values)!r} holds no letters to search by")
        if match.field == "family" and match.op == "prefix":  # also as a range the family-name index can walk
            return (f"{keys[0]}%", keys[0], _range_end(keys[0]))
        return tuple(f"{k}%" if match.op == "prefix" else f"%{k}%" for k in keys)
    if match.field == "postcode":
        text = " ".join(str(match.values[0]).upper().split())
        with contextlib.suppress(ValueError):
            text = normalise_postcode(text)
        return (text if match.op == "exact" else f"{text}%" if match.op == "prefix" else f"%{text}%",)
    if match.field == "nhs_number":
        return (re.sub(r"[\s-]", "", str(match.values[0])),)
    return match.values


def _condition(match: tuple[str, str, int], name: str) -> Any:
    """The SQL condition of one match, its values bound as ``{name}_0``, ``{name}_1``..."""
    pi = PersonIndex
    field_name, op, arity = match

    def value(k: int = 0, type_: Any = String) -> Any:
        return bindparam(f"{name}_{k}", type_=type_)

    if field_name == "person_id":
        return pi.person_id == value()
    if field_name == "sex":
        return pi.sex == value()
    if field_name == "nhs_number" and op == "present":
        return pi.nhs_number.is_not(None)
    if field_name == "nhs_number":
        merged = aliased(PersonIndex)
        return or_(pi.nhs_number == value(), pi.person_id.in_(
            select(merged.merged_into).where(merged.nhs_number == value(), merged.status == "merged")))
    if field_name == "identifier":
        ident = select(PersonIdentifier.person_id)
        if op == "system":
            ident = ident.where(PersonIdentifier.system == value())
        elif op == "in_system":
            ident = ident.where(PersonIdentifier.system == value(0), PersonIdentifier.value == value(1))
        else:
            ident = ident.where(PersonIdentifier.value == value())
        return pi.person_id.in_(ident)
    if field_name == "family" and op == "prefix":
        return and_(pi.family_name.between(value(1), value(2)), pi.family_name.like(value()))
    if field_name in ("family", "given"):
        column = pi.family_name if field_name == "family" else pi.given_name
        return column.like(value())
    if field_name == "name":
        return and_(*(or_(pi.family_name.like(value(k)), pi.given_name.like(value(k))) for k in range(arity)))
    if field_name == "postcode":
        return pi.postcode == value() if op == "exact" else pi.postcode.like(value())
    if field_name == "birth_date":
        first, last = value(0, pi.birth_date.type), value(1, pi.birth_date.type)
        return {"eq": pi.birth_date.between(first, last),
                "ne": or_(pi.birth_date < first, pi.birth_date > last),
                "gt": pi.birth_date > last, "sa": pi.birth_date > last,
                "lt": pi.birth_date < first, "eb": pi.birth_date < first,
                "ge": pi.birth_date >= first, "le": pi.birth_date <= last}[op]
    return false()


@functools.lru_cache(maxsize=256)
def _ids_statement(shape: tuple[Any, ...], after: bool) -> PreparedStatement:
    """Ids of the active people matching a filter of this shape, in id order, after ``:after``, ``:limit`` of
    them. Built once per shape: building and compiling the statement for every search cost more than running
    it (bench/api_load.py)."""
    stmt = select(PersonIndex.person_id).where(*_filter(shape))
    if after:
        stmt = stmt.where(PersonIndex.person_id > bindparam("after"))
    return PreparedStatement(stmt.order_by(PersonIndex.person_id).limit(bindparam("limit", type_=Integer)))


@functools.lru_cache(maxsize=256)
def _count_statement(shape: tuple[Any, ...]) -> PreparedStatement:
    """How many active people match a filter of this shape (seals not yet considered)."""
    return PreparedStatement(select(func.count()).select_from(PersonIndex).where(*_filter(shape)))


@functools.lru_cache(maxsize=256)
def _guarded_statement(shape: tuple[Any, ...]) -> PreparedStatement:
    """The matching people who carry a seal or are held in an open identity review beside someone who does: the
    only ones a caller may not be allowed to know of (:mod:`hub.access.decision`)."""
    # the seal probe is correlated, so the (person_id, entity_type) index answers it for each match rather than
    # every seal's entity being listed first; open reviews are few and listed once
    def sealed_person(person: Any) -> Any:
        return select(Entity.id).where(Entity.person_id == person, Entity.entity_type == "Seal").exists()

    review = MatchReview
    # held beside a sealed person: the only reviews that lend a seal (hub.access.decision.held_seals)
    reviewed = union(select(review.person_a).where(review.status == REVIEW_OPEN, sealed_person(review.person_b)),
                     select(review.person_b).where(review.status == REVIEW_OPEN, sealed_person(review.person_a)))
    return PreparedStatement(select(PersonIndex.person_id).where(
        *_filter(shape), or_(sealed_person(PersonIndex.person_id), PersonIndex.person_id.in_(reviewed))))


def _filter(shape: tuple[Any, ...]) -> list[Any]:
    """The WHERE conditions of a filter of this shape."""
    pi = PersonIndex
    conditions: list[Any] = [pi.status == "active"]
    clauses = 0
    for part in shape:
        if part == "family_range":
            conditions.append(pi.family_name.between(bindparam("family_low"), bindparam("family_high")))
        elif part == "person_id":
            conditions.append(pi.person_id == bindparam("person_id"))
        elif part == "nhs_number":
            conditions.append(_condition(("nhs_number", "eq", 1), "nhs_number"))
        elif part == "identifier":
            ident = select(PersonIdentifier.person_id).where(PersonIdentifier.value == bindparam("identifier"))
            if "identifier_system" in shape:
                ident = ident.where(PersonIdentifier.system == bindparam("identifier_system"))
            conditions.append(pi.person_id.in_(ident))
        elif part == "family":
            conditions.append(pi.family_name.like(bindparam("family")))
        elif part == "given":
            conditions.append(pi.given_name.like(bindparam("given")))
        elif part == "birth_date":
            conditions.append(pi.birth_date == bindparam("birth_date", type_=pi.birth_date.type))
        elif part == "postcode":
            conditions.append(pi.postcode == bindparam("postcode"))
        elif part == "outward_code":
            conditions.append(pi.postcode.like(bindparam("postcode")))
        elif isinstance(part, tuple) and part[0] == "name":
            for n in range(part[1]):
                token = bindparam(f"name_{n}", type_=String)
                conditions.append(or_(pi.family_name.like(token), pi.given_name.like(token)))
        elif isinstance(part, tuple) and part[0] == "any_of":
            conditions.append(or_(*(_condition(m, f"m{clauses}_{j}") for j, m in enumerate(part[1]))))
            clauses += 1
    return conditions


# Few enough people by a family-name prefix to fetch them all through the name's index and sort them by id;
# more, and walking the people in id order finds a page sooner than sorting them all would.
FEW_BY_FAMILY = 500
_FAMILY_PREFIX_COUNT = PreparedStatement(select(func.count()).select_from(
    select(PersonIndex.family_name)  # the index alone answers it
    .where(PersonIndex.family_name.between(bindparam("low"), bindparam("high")))
    .limit(FEW_BY_FAMILY).subquery()))


def _range_end(key: str) -> str:
    return key + "Z" * max(1, 100 - len(key))


def _few_by_family(session: Reader, query: PersonQuery) -> bool:
    """True when the family-name prefix is rare enough to search through its index (an index-only count).

    Rare names ("Marlow") would otherwise mean reading every person in id order
    to fill a page; common ones ("Singh") would mean sorting thousands of ids.
    """
    key = search_key(query.family) if query.family else None
    if not key:
        return False
    ((found,),) = _FAMILY_PREFIX_COUNT.all(session, {"low": key, "high": _range_end(key)})
    return bool(found < FEW_BY_FAMILY)


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


def count_people(session: Reader, policy: Policy, caller: Caller, query: PersonQuery) -> int:
    """How many people :func:`search_people` would hand this caller over all its pages.

    Only someone with a seal, or held in an open identity review (who may inherit
    a seal from the other person), can be unknown to a caller, so only those
    matches go through the access decision one by one; the rest are counted.
    """
    require_read(policy, caller, "Person")
    if query.is_empty():
        raise InvalidQuery("name at least one search criterion")
    shape, params = _criteria(query, family_by_index=True)  # a count reads every match: a range walks fewer
    ((total,),) = _count_statement(shape).all(session, params)
    guarded = [pid for (pid,) in _guarded_statement(shape).all(session, params)] if total else []
    if guarded:
        decided = Access(session, policy, caller).people(guarded, exact=query.by_identifier)
        total -= sum(1 for d in decided.values() if not d.visible)
    return int(total)


def _updated_of(session: Reader, person_ids: list[str]) -> dict[str, str]:
    """When each person's golden record last changed (ISO), for a FHIR ``meta.lastUpdated``."""
    if not person_ids:
        return {}
    rows = session.execute(select(Entity.id, type_coerce(Entity.updated_at, IsoTimestamp))
                           .where(Entity.id.in_(person_ids)))
    return {pid: updated for pid, updated in rows}


def search_people(session: Reader, policy: Policy, caller: Caller, query: PersonQuery, audit: AuditContext,
                  *, limit: int = 20, cursor: str | None = None, with_updated: bool = False) -> SearchPage:
    """People matching ``query`` that the caller may know exist, in id order after ``cursor``.

    Each match goes through the access decision (:mod:`hub.access.decision`):
    a person the caller may not know of is left out, and the page is filled
    from further rows so they leave no gap or count behind; a person the caller
    may know of but not read without breaking glass is a reduced entry (name,
    birth date, sex). Only a search by an exact identifier can break glass, and
    when it does the reason goes on the audit row as a record read's would.
    """
    require_read(policy, caller, "Person")
    if query.is_empty():
        raise InvalidQuery("name at least one search criterion")
    limit = max(1, min(limit, MAX_PAGE))
    audit.action = "search"
    access = Access(session, policy, caller, audit)
    shape, params = _criteria(query, family_by_index=_few_by_family(session, query))
    params["limit"] = limit + 1
    found: list[tuple[str, Subject, Disclosure]] = []
    after = cursor
    exhausted = False
    while len(found) <= limit and not exhausted:
        # The page's ids first, then their documents and access facts together: documents are read for
        # one page, not for every match.
        ids = [pid for (pid,) in _ids_statement(shape, bool(after)).all(session, {**params, "after": after})]
        exhausted = len(ids) < limit + 1
        if not ids:
            break
        after = ids[-1]
        for pid, subject in load_subjects(session, ids).items():
            if subject.document is None:
                continue
            disclosure = access.decide(subject, exact=query.by_identifier)
            if disclosure.visible:
                found.append((pid, subject, disclosure))
    page, more = found[:limit], len(found) > limit
    people, documents = [], {}
    for pid, subject, disclosure in page:
        assert subject.document is not None
        summary = summarise(pid, subject.document)
        if disclosure.outcome == OPEN:
            access.note(disclosure)
            documents[pid] = subject.document
            summary["access"] = "open"
        else:
            documents[pid] = reduced_person(subject.document)
            summary = {**summarise(pid, documents[pid]), "access": "break_glass_required"}
        people.append(summary)
        audit.touch_person(pid)
        audit.touch("Patient", pid)
    return SearchPage(people, page[-1][0] if more and page else None, documents,
                      _updated_of(session, list(documents)) if with_updated else {})


def owners(session: Reader, entity_type: str, ids: Iterable[str]) -> set[str]:
    """The people whose records of ``entity_type`` carry these ids (ids of no such record are left out)."""
    wanted = list(ids)
    if not wanted:
        return set()
    return {pid for pid in session.scalars(select(Entity.person_id).where(
        Entity.id.in_(wanted), Entity.entity_type == entity_type)) if pid}


def reduced_person(doc: dict[str, Any]) -> dict[str, Any]:
    """What a search shows of a person the caller must break glass to read: the name, birth date and sex
    needed to tell them apart, nothing more."""
    names = doc.get("names") or []
    return {"names": names[:1], "birth_date": doc.get("birth_date"), "sex": doc.get("sex", "unknown")}


def person_entities(session: Session, person_id: str) -> list[Entity]:
    """Every canonical entity of one person (the Person itself included)."""
    return list(session.scalars(select(Entity).where(Entity.person_id == person_id)))


@dataclass(slots=True)
class StoredItem:
    """One entity of a person as the record needs it: its document (parsed when first needed, at most once),
    its provenance beside it."""

    id: str
    entity_type: str
    version: int
    updated: str
    document: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    parsed: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The document, parsed."""
        if self.parsed is None:
            self.parsed = orjson.loads(self.document)
        return self.parsed

    def data_or_json(self) -> dict[str, Any] | orjson.Fragment:
        """The parsed document if something has read it, else its stored JSON to embed as it is in an answer."""
        return self.parsed if self.parsed is not None else orjson.Fragment(self.document)


_ITEM_COLUMNS = (Entity.id, Entity.entity_type, Entity.version, type_coerce(Entity.updated_at, IsoTimestamp),
                 Entity.document)
# Built once: a record open runs one of these, and building the statement would cost more than running it.
_PERSON_ITEMS = PreparedStatement(select(*_ITEM_COLUMNS).where(Entity.person_id == bindparam("pid")))
_PERSON_ITEMS_WITH_SOURCES = PreparedStatement(
    select(*_ITEM_COLUMNS, SourceLink.source, SourceLink.stream, SourceLink.source_id,
           type_coerce(SourceLink.last_seen, IsoTimestamp))
    .outerjoin(SourceLink, SourceLink.entity_id == Entity.id)
    .where(Entity.person_id == bindparam("pid"))
)


def load_person(session: Reader, person_id: str, *, with_provenance: bool) -> list[StoredItem]:
    """Every entity of one person with its parsed document and (optionally) its source records, in one query.

    Provenance comes from ``source_links`` joined on the entity (most recent
    first), so the record costs one indexed lookup however many items it has.
    """
    if not with_provenance:
        return [StoredItem(eid, etype, version, updated, document)
                for eid, etype, version, updated, document in _PERSON_ITEMS.all(session, {"pid": person_id})]
    items: dict[str, StoredItem] = {}
    for eid, etype, version, updated, document, source, stream, source_id, last_seen in _PERSON_ITEMS_WITH_SOURCES.all(
            session, {"pid": person_id}):
        item = items.get(eid)
        if item is None:
            item = items[eid] = StoredItem(eid, etype, version, updated, document)
        if source is not None:
            item.sources.append({"system": source, "stream": stream, "source_id": source_id,
                                 "last_seen": last_seen})
    for item in items.values():
        if len(item.sources) > 1:
            item.sources.sort(key=lambda src: src["last_seen"], reverse=True)
    return list(items.values())


def facts_from(person_id: str, entities: Iterable[Entity | StoredItem]) -> PersonFacts:
    """The access facts of a person from their already-loaded entities."""
    facts = PersonFacts(person_id)
    consents: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in entities:
        if e.entity_type not in ("Seal", "Episode", "Consent", "Person", "Transition"):
            continue
        doc = e.data if isinstance(e, StoredItem) else orjson.loads(e.document)
        facts.note(e.entity_type, doc)
        if e.entity_type in ("Person", "Transition"):
            continue
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


def merged_away(session: Reader, person_id: str) -> tuple[str, dict[str, Any], str] | None:
    """For a person merged into another: the survivor's id, the merged document and its last update."""
    row = session.execute(select(Entity.document, Entity.updated_at).where(
        Entity.id == person_id, Entity.entity_type == "Person")).first()
    if row is None:
        return None
    doc = orjson.loads(row.document)
    survivor = doc.get("merged_into")
    return (survivor, doc, row.updated_at.isoformat()) if survivor else None


def open_record(session: Reader, policy: Policy, caller: Caller, person_id: str, audit: AuditContext,
                *, types: frozenset[str] | None = None, with_provenance: bool = True,
                embed_documents: bool = False) -> LoadedRecord:
    """The person's record as the caller may see it, each item with its sources and last update.

    ``embed_documents`` hands each item's ``data`` out as its stored JSON
    (an ``orjson.Fragment``, for an answer that only serialises it) unless the
    rules have parsed it already. ``types`` narrows what is handed out (FHIR
    reads of one resource type). The access decision (:mod:`hub.access.decision`)
    says what may be read: a person the caller may not know of is NotFound
    exactly as an id never held; someone outside a social worker's team is
    Forbidden unless the caller breaks glass. Refusals are noted on the audit
    context with their real reason; a break glass, with the caller's reason.
    Relatives the caller may not know of are not named.
    """
    audit.touch_person(person_id)
    access = Access(session, policy, caller, audit)
    entities = load_person(session, person_id, with_provenance=with_provenance)
    person = next((e for e in entities if e.entity_type == "Person" and e.id == person_id), None)
    if person is None or person.data.get("merged_into"):
        access.refuse(Disclosure(person_id, UNKNOWN, "merged record" if person else "no such person",
                                 exists=False))
    facts = facts_from(person_id, entities)
    held = held_seals(session, [person_id]).get(person_id)
    if held:
        facts.seals.extend(held)
    view = access.require(access.decide(Subject(person_id, True, facts, person.data)))
    wanted = view.types if types is None else view.types & types
    allowed = [e for e in entities if e.entity_type in wanted and e.entity_type in RECORD_SECTIONS]
    access.relatives([e.data for e in allowed if e.entity_type == "Relationship"])
    record = LoadedRecord(view=view, person=_item(person), access=access)
    for e in sorted(allowed, key=lambda e: e.id):
        record.items.setdefault(e.entity_type, []).append(_item(e, embed_documents))
        audit.touch(e.entity_type, e.id)
    audit.touch("Person", person.id)
    readable_anyway = policy.readable_types(caller.role)
    record.hidden_sections = sorted({RECORD_SECTIONS[t] for t in readable_anyway - view.types if t in RECORD_SECTIONS})
    return record


def _item(entity: StoredItem, embed: bool = False) -> dict[str, Any]:
    return {"id": entity.id, "type": entity.entity_type, "version": entity.version,
            "updated": entity.updated, "sources": entity.sources,
            "data": entity.data_or_json() if embed else entity.data}


TIMELINE_DATES: dict[str, tuple[str, ...]] = {
    "Episode": ("start",), "Referral": ("received",), "Assessment": ("start",), "CarePlan": ("start",),
    "HealthEvent": ("admitted", "discharged"), "DocumentLink": ("created",), "Transition": ("identified",),
    "Flag": ("start",),
}


def timeline(record: LoadedRecord, policy: Policy) -> list[dict[str, Any]]:
    """Episodes, referrals, assessments, plans, health events, documents, transitions, flags: newest first (teams
    named by the policy's reference data)."""
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
                            "title": timeline_title(etype, doc, policy), "ongoing": _ongoing(etype, doc),
                            "sources": [s["system"] for s in item["sources"]]})
    entries.sort(key=lambda e: (e["date"], e["id"]), reverse=True)
    return entries


def _ongoing(etype: str, doc: dict[str, Any]) -> bool:
    if etype in ("Episode", "CarePlan", "Flag"):
        return not doc.get("end")
    if etype == "HealthEvent":
        return doc.get("status") == "in-progress"
    return False


def timeline_title(etype: str, doc: dict[str, Any], policy: Policy) -> str:
    """A one-line description of an item for the timeline."""
    area = {"childrens": "Children's", "adults": "Adults'"}.get(doc.get("service_area", ""), "")
    if etype == "Episode":
        return f"{area} {doc['kind']} episode, team {policy.team_label(doc.get('team')) or 'unallocated'}".strip()
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
