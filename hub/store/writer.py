"""The golden-record writer: the one way canonical entities and change events reach the store.

Everything that changes a canonical entity - the pipeline's batches, merge and
unmerge, UPRN retirement, ADT, and every link - writes through this module, and
every change event through :func:`append_events`. What it keeps in step, so no
caller can forget a part:

* ``entities`` - the golden document, its canonical JSON (:func:`canonical_json`),
  :func:`content_hash` and version;
* ``source_links`` - provenance: which source record said what, and when;
* ``person_index`` and ``person_identifiers`` for a Person - the search columns,
  identity's blocking keys and ``match_fields`` (the matcher's normalised fields);
* ``transition_cohort`` for a Person, Episode or Transition - the transitions cohort's facts
  (:mod:`hub.store.cohort`), so the due scan reads one narrow indexed row per young person;
* ``outbox`` - :func:`append_events` takes the outbox-order lock
  (:func:`hub.delivery.fanout.hold_outbox_order`) and sets each event's lane from its
  ordering key; event ids are deterministic (:func:`event_id_for`).

A link writes one canonical record with :func:`write_canonical` (docs/architecture.md,
"Writing canonical records"); the pipeline writes whole batches with the bulk functions
below. Two guards keep it the only way: a session flushing a new, changed or deleted
canonical row outside this module's functions raises :class:`~hub.errors.WriteSeamError`
(:func:`_only_the_writer`), and tests/integration/test_write_seam.py fails if any module
outside ``hub/store`` writes these tables with SQL or SQLAlchemy statements.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from hub.delivery.fanout import hold_outbox_order
from hub.errors import WriteSeamError
from hub.identity.resolver import document_match_keys
from hub.model import Canonical, Person
from hub.store import cohort
from hub.store.bulk import bulk_insert, bulk_update, chunks, insert_returning, rows_in
from hub.store.canonical import canonical_json, content_hash, entity_id_for, event_id_for
from hub.store.tables import Entity, OutboxEvent, PersonIdentifier, PersonIndex, RawRecord, SourceLink, lane_of, utcnow
from hub.survivorship import Contribution, Survivorship

__all__ = [
    "ENTITY_COLUMNS", "LINK_COLUMNS", "PERSON_INDEX_COLUMNS", "NewEvent", "Provenance", "WriteOutcome",
    "append_events", "canonical_json", "content_hash", "entity_id_for", "event_id_for", "insert_entities",
    "person_index_row", "restore_entity", "restore_person_index", "revise_entity", "search_key",
    "update_entities", "write_canonical", "write_canonical_batch", "write_person_index", "write_source_links",
]

# -- the seam ---------------------------------------------------------------------------------------------------

CANONICAL_ROWS = (Entity, SourceLink, PersonIndex, PersonIdentifier, OutboxEvent, cohort.CohortFacts)
"""The ORM classes of the rows only this module writes."""

_WRITING: ContextVar[bool] = ContextVar("carehub_golden_writer", default=False)


@contextmanager
def _writing(session: Session) -> Iterator[None]:
    """Within the writer: canonical rows it changed through the ORM are flushed before it returns."""
    token = _WRITING.set(True)
    try:
        yield
        session.flush()
    finally:
        _WRITING.reset(token)


@event.listens_for(Session, "before_flush")
def _only_the_writer(session: Session, _context: Any, _instances: Any) -> None:
    """Refuse to flush a canonical row created, changed or deleted outside the writer's functions."""
    if _WRITING.get():
        return
    for row in (*session.new, *session.deleted):
        if isinstance(row, CANONICAL_ROWS):
            raise WriteSeamError(f"a {type(row).__name__} row was added or deleted outside hub.store.writer")
    for row in session.dirty:
        if isinstance(row, CANONICAL_ROWS) and session.is_modified(row):
            raise WriteSeamError(f"a {type(row).__name__} row was changed outside hub.store.writer")


# -- change events -----------------------------------------------------------------------------------------------


class NewEvent(NamedTuple):
    """A change event to append: what :func:`append_events` takes (it adds the lane and the status)."""

    event_id: str
    entity_type: str
    entity_id: str
    person_id: str | None
    kind: str
    version: int
    ordering_key: str
    source: str | None
    created_at: datetime
    payload: bytes | str


_EVENT_COLUMNS = ("event_id", "entity_type", "entity_id", "person_id", "kind", "version", "ordering_key", "lane",
                  "source", "created_at", "status", "payload")


def append_events(session: Session, events: Sequence[NewEvent]) -> int:
    """Append change events to the outbox in the session's transaction; returns how many.

    Takes the outbox-order lock first (ids then rise in commit order, which the delivery
    lanes' cursors rely on) and sets each event's lane from its ordering key.
    """
    if not events:
        return 0
    hold_outbox_order(session)
    rows = [[e.event_id, e.entity_type, e.entity_id, e.person_id, e.kind, e.version, e.ordering_key,
             lane_of(e.ordering_key), e.source, e.created_at, "pending",
             e.payload if isinstance(e.payload, str) else e.payload.decode()] for e in events]
    bulk_insert(session, OutboxEvent, _EVENT_COLUMNS, rows)
    return len(rows)


def entity_event(entity: Entity, kind: str, *, source: str | None, at: datetime,
                 payload: dict[str, Any] | None = None) -> NewEvent:
    """The change event of an entity's current version: the id derived from (id, version, kind); the payload
    the golden document with its ids, unless given."""
    body = payload if payload is not None else {"id": entity.id, "person_id": entity.person_id,
                                                **orjson.loads(entity.document)}
    key = entity.person_id or entity.id
    return NewEvent(event_id_for(entity.id, entity.version, kind), entity.entity_type, entity.id, entity.person_id,
                    kind, entity.version, key, source, at, canonical_json(body))


# -- golden entities, provenance, person index (bulk: the pipeline's batches) ------------------------------------

ENTITY_COLUMNS = ("id", "entity_type", "person_id", "version", "content_hash", "document", "created_at", "updated_at")
"""The columns of :func:`insert_entities`' rows, in order."""
LINK_COLUMNS = ("source", "stream", "source_id", "entity_type", "entity_id", "content_hash", "document",
                "raw_record_id", "version", "first_seen", "last_seen")
"""The columns of :func:`write_source_links`' new rows, in order."""
PERSON_INDEX_COLUMNS = ("person_id", "nhs_number", "nhs_verified", "family_name", "given_name", "birth_date", "sex",
                        "postcode", "status", "merged_into", "family_phonetic", "given_phonetic", "birth_year",
                        "match_fields")
"""The ``person_index`` columns of :func:`person_index_row`, in the order the index rows give them."""


def insert_entities(session: Session, rows: list[list[Any]]) -> None:
    """Insert new golden entities (rows in :data:`ENTITY_COLUMNS` order, converted in place), keeping the
    transitions cohort's facts in step."""
    persons = [(row[0], orjson.loads(row[5])) for row in rows if row[1] == Person.entity_type]
    involved = {row[2] for row in rows if row[1] in cohort.INVOLVEMENT_TYPES}
    bulk_insert(session, Entity, ENTITY_COLUMNS, rows)
    _keep_cohort(session, persons, involved)


def update_entities(session: Session, rows: list[dict[str, Any]]) -> None:
    """Update golden entities by id (each row: ``id`` and the new column values), keeping the transitions
    cohort's facts in step (a record moved to another person refreshes both)."""
    if not rows:
        return
    before: dict[str, tuple[str, str | None]] = {}
    for chunk in chunks([row["id"] for row in rows]):
        before.update({eid: (etype, pid) for eid, etype, pid in session.execute(
            select(Entity.id, Entity.entity_type, Entity.person_id).where(Entity.id.in_(chunk)))})
    persons: list[tuple[str, dict[str, Any]]] = []
    involved: set[str | None] = set()
    for row in rows:
        etype, old_person = before.get(row["id"], ("", None))
        if etype == Person.entity_type and "document" in row:
            persons.append((row["id"], orjson.loads(row["document"])))
        elif etype in cohort.INVOLVEMENT_TYPES:
            involved.update((old_person, row.get("person_id", old_person)))
    bulk_update(session, Entity, rows)
    _keep_cohort(session, persons, involved)


def _keep_cohort(session: Session, persons: list[tuple[str, dict[str, Any]]], involved: Iterable[str | None]) -> None:
    """The transitions cohort's facts after writing these Persons (id, document) and these people's Episodes or
    Transitions."""
    if persons:
        cohort.note_persons(session, persons)
    cohort.refresh(session, involved)


def write_source_links(session: Session, new: list[list[Any]], changed: list[dict[str, Any]]) -> None:
    """Provenance: insert new source links (:data:`LINK_COLUMNS` order) and update changed ones by id."""
    if new:
        bulk_insert(session, SourceLink, LINK_COLUMNS, new)
    if changed:
        bulk_update(session, SourceLink, changed)


# A golden person to index: (person id, "created" or "updated", its person_index row in PERSON_INDEX_COLUMNS
# order, its local identifiers as (system, value)).
PersonWrite = tuple[str, str, tuple[Any, ...], Sequence[tuple[str, str]]]


def person_write(person_id: str, kind: str, golden: dict[str, Any]) -> PersonWrite:
    """What the person index gets for a golden Person document."""
    row = person_index_row(person_id, golden)
    return (person_id, kind, tuple(row[c] for c in PERSON_INDEX_COLUMNS),
            [(i["system"], i["value"]) for i in golden.get("identifiers", [])])


def write_person_index(
    session: Session, persons: Iterable[PersonWrite]
) -> tuple[list[tuple[Any, ...]], list[str], list[tuple[str, str, str]]]:
    """Keep the typed search columns and identifiers of golden persons in step with their documents.

    Returns what it wrote: the index rows (new and changed, in :data:`PERSON_INDEX_COLUMNS` order),
    the persons whose identifiers it replaced, and the identifiers it inserted (person id, system, value).
    """
    index_new: list[tuple[Any, ...]] = []
    index_changed: list[tuple[Any, ...]] = []
    identifiers: list[tuple[str, str, str]] = []
    changed_ids: list[str] = []
    for pid, kind, row, pairs in persons:
        (index_new if kind == "created" else index_changed).append(row)
        if kind != "created":
            changed_ids.append(pid)
        seen: set[tuple[str, str]] = set()
        for key in pairs:
            if key not in seen:
                seen.add(key)
                identifiers.append((pid, key[0], key[1]))
    if index_new:
        bulk_insert(session, PersonIndex, PERSON_INDEX_COLUMNS, [list(row) for row in index_new])
    if index_changed:
        bulk_update(session, PersonIndex, [dict(zip(PERSON_INDEX_COLUMNS, row, strict=True)) for row in index_changed])
    for chunk in chunks(changed_ids):
        session.execute(delete(PersonIdentifier).where(PersonIdentifier.person_id.in_(chunk)))
    free: list[tuple[str, str, str]] = []
    if identifiers:
        taken = _taken_identifiers(session, identifiers)
        free = [i for i in identifiers if (i[1], i[2]) not in taken]
        if free:
            bulk_insert(session, PersonIdentifier, ("person_id", "system", "value"), [list(i) for i in free])
    return [*index_new, *index_changed], changed_ids, free


def _taken_identifiers(session: Session, identifiers: list[tuple[str, str, str]]) -> set[tuple[str, str]]:
    """Identifiers already held by another person (a duplicate the identity review will settle)."""
    taken: set[tuple[str, str]] = set()
    by_system: dict[str, list[str]] = defaultdict(list)
    for _, system, value in identifiers:
        by_system[system].append(value)
    for system, values in by_system.items():  # a plain IN per system uses the value index
        rows = rows_in(session, "SELECT value FROM person_identifiers WHERE system = {m} AND value IN ({in})",
                       (system,), values)
        taken.update((system, value) for (value,) in rows)
    return taken


def person_index_row(person_id: str, doc: dict[str, Any], fields: Sequence[Any] | None = None) -> dict[str, Any]:
    """The person_index columns for a golden Person document (``fields``: its normalised match fields,
    when known; see ``document_match_keys``)."""
    name = (doc.get("names") or [{}])[0]
    address = (doc.get("addresses") or [{}])[0]
    birth = doc.get("birth_date")
    return {
        "person_id": person_id,
        "nhs_number": doc.get("nhs_number"),
        "nhs_verified": bool(doc.get("nhs_number")) and doc.get("nhs_number_status") == "01",
        "family_name": search_key(name.get("family")),
        "given_name": search_key((name.get("given") or [None])[0]),
        "birth_date": datetime.fromisoformat(birth).date() if birth else None,
        "sex": doc.get("sex"),
        "postcode": address.get("postcode"),
        "status": "merged" if doc.get("merged_into") else "active",
        "merged_into": doc.get("merged_into"),
        **document_match_keys(doc, fields),
    }


def search_key(name: str | None) -> str | None:
    """A name folded for searching: upper case, letters only."""
    if not name:
        return None
    return _NOT_LETTER.sub("", name.upper()) or None


_NOT_LETTER = re.compile(r"[^A-Z]")


# -- one entity at a time (merge, unmerge, UPRN retirement) ------------------------------------------------------


def revise_entity(session: Session, entity: Entity, document: dict[str, Any], *, person_id: str | None = None,
                  at: datetime | None = None) -> None:
    """Give a loaded entity a new golden document: canonical JSON, hash, the next version and, for a Person,
    its ``person_index`` row (search columns, blocking keys and ``match_fields``) from the new document.
    The person's identifier rows are left as they are (a merge moves them itself). ``person_id``
    re-points a record to another person. Announce the change with :func:`append_events`."""
    body = canonical_json(document)
    old_person = entity.person_id
    with _writing(session):
        entity.document, entity.content_hash = body.decode(), content_hash(body)
        entity.version += 1
        entity.updated_at = at or utcnow()
        if person_id is not None:
            entity.person_id = person_id
        if entity.entity_type == Person.entity_type:
            _reindex(session, entity.id, document)
        _entity_moved(session, entity, old_person)


def repoint_record(session: Session, entity: Entity, person_id: str) -> None:
    """Move a record to another person without changing its document (merge)."""
    old_person = entity.person_id
    with _writing(session):
        entity.person_id = person_id
        _entity_moved(session, entity, old_person)


def _entity_moved(session: Session, entity: Entity, old_person: str | None) -> None:
    """The transitions cohort's facts after an entity loaded in the session changed (its document or person)."""
    if entity.entity_type == Person.entity_type:
        cohort.note_persons(session, [(entity.id, orjson.loads(entity.document))])
    elif entity.entity_type in cohort.INVOLVEMENT_TYPES:
        session.flush()
        cohort.refresh(session, (old_person, entity.person_id))


def _reindex(session: Session, person_id: str, document: dict[str, Any]) -> None:
    row = session.get(PersonIndex, person_id)
    values = person_index_row(person_id, document)
    if row is None:
        session.add(PersonIndex(**values))
        return
    for key, value in values.items():
        setattr(row, key, value)


def restore_entity(session: Session, entity: Entity, state: dict[str, Any], at: datetime | None = None) -> None:
    """Put back an entity's document and person as a snapshot kept them (unmerge); the version moves on
    past both, so downstream systems see a newer version."""
    old_person = entity.person_id
    with _writing(session):
        entity.document, entity.content_hash = state["document"], state["content_hash"]
        entity.person_id = state["person_id"]
        entity.version = max(entity.version, state["version"]) + 1
        entity.updated_at = at or utcnow()
        _entity_moved(session, entity, old_person)


def restore_person_index(session: Session, person_id: str, state: dict[str, Any] | None) -> None:
    """Put back a person's ``person_index`` row as a snapshot kept it (unmerge)."""
    row = session.get(PersonIndex, person_id)
    if row is None or state is None:
        return
    with _writing(session):
        for key, value in state.items():
            if key == "birth_date":
                value = date.fromisoformat(value[:10]) if value else None
            setattr(row, key, value)


def repoint_provenance(session: Session, link_ids: Sequence[int], identifier_ids: Sequence[int],
                       person_id: str) -> None:
    """Move source links and local identifiers to another person (merge, unmerge)."""
    links = list(session.scalars(select(SourceLink).where(SourceLink.id.in_(link_ids))))
    identifiers = list(session.scalars(select(PersonIdentifier).where(PersonIdentifier.id.in_(identifier_ids))))
    with _writing(session):
        for link in links:
            link.entity_id = person_id
        for identifier in identifiers:
            identifier.person_id = person_id


def revise_contribution(session: Session, link: SourceLink, document: dict[str, Any]) -> None:
    """Correct what a source link says (the hub's own additions, such as a UPRN's successor)."""
    with _writing(session):
        link.document = canonical_json(document).decode()


# -- one canonical record from a link ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a canonical record came from: the source system, its stream and its own key.

    ``payload`` is the record as the source sent it (kept verbatim in ``raw_records``; the
    canonical document when None); ``modified`` the source's own last-modified stamp.
    """

    source: str
    stream: str
    source_id: str
    payload: Any = None
    modified: str | None = None


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What :func:`write_canonical` did: ``created``, ``updated`` or ``unchanged``, the entity's id and
    version, and the id of the change event it appended (None when unchanged)."""

    kind: str
    entity_id: str
    version: int
    event_id: str | None


def write_canonical(session: Session, model: Canonical, provenance: Provenance, *,
                    survivorship: Survivorship | None = None, at: datetime | None = None) -> WriteOutcome:
    """Write one canonical record from a source, in the caller's transaction (the caller commits).

    Keeps the source's record in ``raw_records`` and its contribution in ``source_links``, folds
    every source's contribution into the golden document by ``survivorship`` (most recent source
    wins when None), writes the entity with its next version and content hash, keeps a Person's
    index and identifiers in step, and appends a ``created`` or ``updated`` change event. The same
    record twice changes nothing the second time.

    The entity's id is the one its source record already has, else ``model.id``, else derived from
    the provenance (:func:`entity_id_for`). A Person written here is not matched against the people
    the hub holds: send people through the pipeline (``Pipeline.ingest``) unless you know their id.
    """
    now = at or utcnow()
    etype = model.entity_type
    document = model.model_dump(mode="json", exclude_none=True, exclude={"id"})
    document_bytes = canonical_json(document)
    payload = canonical_json(provenance.payload if provenance.payload is not None else document)
    digest = content_hash(payload)
    key = (provenance.source, provenance.stream, provenance.source_id)
    link = session.scalar(select(SourceLink).where(SourceLink.source == key[0], SourceLink.stream == key[1],
                                                   SourceLink.source_id == key[2]))
    if link is not None and link.content_hash == digest:
        entity = session.get(Entity, link.entity_id)
        return WriteOutcome("unchanged", link.entity_id, entity.version if entity else 0, None)
    raw_id = session.scalar(select(RawRecord.id).where(
        RawRecord.source == key[0], RawRecord.stream == key[1], RawRecord.source_id == key[2],
        RawRecord.content_hash == digest))
    if raw_id is None:
        raw = RawRecord(source=key[0], stream=key[1], source_id=key[2], content_hash=digest,
                        payload=payload.decode(), received_at=now, source_modified=provenance.modified,
                        status="accepted")
        session.add(raw)
        session.flush()
        raw_id = raw.id
    entity_id = link.entity_id if link is not None else (model.id or entity_id_for(*key))
    if link is None:
        write_source_links(session, [[*key, etype, entity_id, digest, document_bytes.decode(), raw_id, 1, now, now]],
                           [])
    else:
        write_source_links(session, [], [{"id": link.id, "content_hash": digest, "document": document_bytes.decode(),
                                          "raw_record_id": raw_id, "version": link.version + 1, "last_seen": now}])
    contributions = [Contribution(src, seen, orjson.loads(doc)) for src, seen, doc in session.execute(
        select(SourceLink.source, SourceLink.last_seen, SourceLink.document).where(SourceLink.entity_id == entity_id)
        .order_by(SourceLink.id))]
    golden = (survivorship or Survivorship()).merge(etype, contributions) if len(contributions) > 1 else document
    golden_bytes = canonical_json(golden)
    golden_hash = content_hash(golden_bytes)
    person_id = entity_id if etype == Person.entity_type else golden.get("person_id")
    entity = session.get(Entity, entity_id)
    if entity is not None and entity.content_hash == golden_hash:
        return WriteOutcome("unchanged", entity_id, entity.version, None)
    if entity is None:
        kind, version = "created", 1
        insert_entities(session, [[entity_id, etype, person_id, 1, golden_hash, golden_bytes.decode(), now, now]])
    else:
        kind, version = "updated", entity.version + 1
        update_entities(session, [{"id": entity_id, "version": version, "content_hash": golden_hash,
                                   "document": golden_bytes.decode(), "person_id": person_id, "updated_at": now}])
        session.expire(entity)
    if etype == Person.entity_type:
        write_person_index(session, [person_write(entity_id, kind, golden)])
    event_id = event_id_for(entity_id, version, kind)
    append_events(session, [NewEvent(event_id, etype, entity_id, person_id, kind, version, person_id or entity_id,
                                     provenance.source, now,
                                     canonical_json({"id": entity_id, "person_id": person_id, **golden}))])
    return WriteOutcome(kind, entity_id, version, event_id)


def write_canonical_batch(session: Session, items: Sequence[tuple[Canonical, Provenance]], *,
                          survivorship: Survivorship | None = None, at: datetime | None = None) -> list[WriteOutcome]:
    """:func:`write_canonical` for many records at once, with one set of queries per batch (a link's page).

    Same rules, same outcome per record, in order: the raw record kept, provenance folded by
    survivorship, the entity written with its next version, a Person's index kept in step, one
    ``created``/``updated`` event per changed entity; the same record twice changes nothing. Each
    record must have its own source key within the batch.
    """
    now = at or utcnow()
    rules = survivorship or Survivorship()
    prepared = []
    for model, prov in items:
        document = model.model_dump(mode="json", exclude_none=True, exclude={"id"})
        body = canonical_json(document)
        payload = canonical_json(prov.payload) if prov.payload is not None else body
        prepared.append((model, prov, document, body, payload, content_hash(payload)))
    keys = [(p.source, p.stream, p.source_id) for _, p, *_ in prepared]
    if len(set(keys)) != len(keys):
        raise ValueError("write_canonical_batch: a source key appears twice in one batch")
    links: dict[tuple[str, str, str], SourceLink] = {}
    raws: dict[tuple[str, str, str, str], int] = {}
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source, stream, source_id in keys:
        groups[(source, stream)].append(source_id)
    for (source, stream), ids in groups.items():
        for chunk in chunks(ids):
            for link in session.scalars(select(SourceLink).where(
                    SourceLink.source == source, SourceLink.stream == stream, SourceLink.source_id.in_(chunk))):
                links[(source, stream, link.source_id)] = link
            for rid, sid, digest in session.execute(select(RawRecord.id, RawRecord.source_id, RawRecord.content_hash)
                                                    .where(RawRecord.source == source, RawRecord.stream == stream,
                                                           RawRecord.source_id.in_(chunk))):
                raws[(source, stream, sid, digest)] = rid
    outcomes: list[WriteOutcome | None] = [None] * len(prepared)
    todo: list[int] = []
    same: dict[int, str] = {}
    for n, key in enumerate(keys):
        known = links.get(key)
        if known is not None and known.content_hash == prepared[n][5]:
            same[n] = known.entity_id
        else:
            todo.append(n)
    fresh = [[prepared[n][1].source, prepared[n][1].stream, prepared[n][1].source_id, prepared[n][5],
              prepared[n][4].decode(), now, prepared[n][1].modified, "accepted"]
             for n in todo if (*keys[n], prepared[n][5]) not in raws]
    for rid, source, stream, sid, digest in insert_returning(
            session, RawRecord, ("source", "stream", "source_id", "content_hash", "payload", "received_at",
                                 "source_modified", "status"), fresh,
            ("id", "source", "stream", "source_id", "content_hash")):
        raws[(source, stream, sid, digest)] = rid
    new_links: list[list[Any]] = []
    changed_links: list[dict[str, Any]] = []
    entity_of: dict[int, str] = {}
    for n in todo:
        model, prov, _doc, body, _payload, digest = prepared[n]
        key, previous = keys[n], links.get(keys[n])
        raw_id = raws[(*key, digest)]
        entity_id = previous.entity_id if previous is not None else (model.id or entity_id_for(*key))
        entity_of[n] = entity_id
        if previous is None:
            new_links.append([*key, model.entity_type, entity_id, digest, body.decode(), raw_id, 1, now, now])
        else:
            changed_links.append({"id": previous.id, "content_hash": digest, "document": body.decode(),
                                  "raw_record_id": raw_id, "version": previous.version + 1, "last_seen": now})
    write_source_links(session, new_links, changed_links)
    contributions: dict[str, list[Contribution]] = defaultdict(list)
    for chunk in chunks(sorted(set(entity_of.values()))):
        for eid, src, seen, doc in session.execute(
                select(SourceLink.entity_id, SourceLink.source, SourceLink.last_seen, SourceLink.document)
                .where(SourceLink.entity_id.in_(chunk)).order_by(SourceLink.id)):
            contributions[eid].append(Contribution(src, seen, orjson.loads(doc)))
    entities: dict[str, Entity] = {}
    for chunk in chunks(sorted({*entity_of.values(), *same.values()})):
        entities.update({e.id: e for e in session.scalars(select(Entity).where(Entity.id.in_(chunk)))})
    for n, entity_id in same.items():
        outcomes[n] = WriteOutcome("unchanged", entity_id, entities[entity_id].version if entity_id in entities
                                   else 0, None)
    inserts: list[list[Any]] = []
    updates: list[dict[str, Any]] = []
    persons: list[PersonWrite] = []
    events: list[NewEvent] = []
    for n in todo:
        model, prov, document, *_ = prepared[n]
        etype, entity_id = model.entity_type, entity_of[n]
        found = contributions.get(entity_id, [])
        golden = rules.merge(etype, found) if len(found) > 1 else document
        golden_bytes = canonical_json(golden)
        golden_hash = content_hash(golden_bytes)
        person_id = entity_id if etype == Person.entity_type else golden.get("person_id")
        entity = entities.get(entity_id)
        if entity is not None and entity.content_hash == golden_hash:
            outcomes[n] = WriteOutcome("unchanged", entity_id, entity.version, None)
            continue
        if entity is None:
            kind, version = "created", 1
            inserts.append([entity_id, etype, person_id, 1, golden_hash, golden_bytes.decode(), now, now])
        else:
            kind, version = "updated", entity.version + 1
            updates.append({"id": entity_id, "version": version, "content_hash": golden_hash,
                            "document": golden_bytes.decode(), "person_id": person_id, "updated_at": now})
        if etype == Person.entity_type:
            persons.append(person_write(entity_id, kind, golden))
        event_id = event_id_for(entity_id, version, kind)
        events.append(NewEvent(event_id, etype, entity_id, person_id, kind, version, person_id or entity_id,
                               prov.source, now, canonical_json({"id": entity_id, "person_id": person_id, **golden})))
        outcomes[n] = WriteOutcome(kind, entity_id, version, event_id)
    if inserts:
        insert_entities(session, inserts)
    if updates:
        update_entities(session, updates)
        for row in updates:
            if row["id"] in entities:
                session.expire(entities[row["id"]])
    if persons:
        write_person_index(session, persons)
    append_events(session, events)
    return [o for o in outcomes if o is not None]
