"""The ingest pipeline: raw record -> mapped -> validated -> identity -> upsert -> change event.

:meth:`Pipeline.ingest` takes one batch of source records and, in the caller's
transaction, keeps every new raw record verbatim, maps and validates it, parks a
bad one in quarantine with its reason, resolves which golden person it concerns,
merges it into the canonical entity by the survivorship rules, and writes a
change event to the outbox for every entity whose golden document changed.
The same record twice changes nothing the second time (content hash), and every
id the pipeline makes is derived from the source's own key, so a batch that was
rolled back and run again leaves exactly the state of a single run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import orjson
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.contract import MappedRecord, SourceRecord, StreamCursor
from hub.errors import QuarantineError
from hub.identity.blocks import last_event, persons_unchanged_since, persons_written_since
from hub.identity.exact import PersonCandidate, PersonResolver
from hub.identity.record import MatchRecord
from hub.identity.resolver import ScoredResolver
from hub.model import ENTITIES, Canonical, Person
from hub.model.validators import SAFE_TEXT, SAFE_TEXT_MESSAGE
from hub.store.bulk import (
    CHUNK,
    bulk_insert,
    bulk_update,
    by_stream_key,
    chunks,
    insert_returning,
    rowids_of_last_insert,
    rows_in,
)
from hub.store.canonical import ID_NAMESPACE, content_hash, entity_id_for, event_id_for
from hub.store.canonical import canonical_json as dumps
from hub.store.tables import (
    Cursor,
    Quarantine,
    RawRecord,
    SourceLink,
    utcnow,
)
from hub.store.writer import (
    PERSON_INDEX_COLUMNS,
    NewEvent,
    PersonWrite,
    append_events,
    insert_entities,
    person_index_row,
    person_write,
    search_key,
    update_entities,
    write_person_index,
    write_source_links,
)
from hub.survivorship import Contribution, Survivorship

__all__ = ["ID_NAMESPACE", "BatchResult", "Pipeline", "PreparedRecord", "content_hash", "dumps", "entity_id_for",
           "event_id_for", "person_index_row", "prepare", "prepared_rows", "quarantine_reason", "search_key"]

_CHUNK = CHUNK

Mapper = Callable[[SourceRecord], MappedRecord]


class Enricher(Protocol):
    """Adds what the hub knows to validated records before they are stored (a UPRN for an address).

    An enricher never overwrites what the source said; it returns the models in the
    order given, changed or not. Enrichers are named in config (``[pipeline] enrichers``).
    """

    def enrich(self, models: Sequence[Canonical]) -> Sequence[Canonical]:
        """The same models, in order, with the hub's additions."""
        ...


@dataclass
class BatchResult:
    """What one batch did, by outcome."""

    received: int = 0
    accepted: int = 0
    quarantined: int = 0
    unchanged: int = 0
    created: int = 0
    updated: int = 0
    events: int = 0
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    streams: dict[str, BatchResult] = field(default_factory=dict)  # a sync's counts per stream

    def add(self, other: BatchResult) -> None:
        """Fold another batch's counts into this one."""
        for name in ("received", "accepted", "quarantined", "unchanged", "created", "updated", "events"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.reasons.items():
            self.reasons[reason] += n
        for stream, counts in other.streams.items():
            self.streams.setdefault(stream, BatchResult()).add(counts)

    def add_stream(self, stream: str, other: BatchResult) -> None:
        """Fold a batch of ``stream`` into this one, keeping the stream's own counts too."""
        self.add(other)
        self.streams.setdefault(stream, BatchResult()).add(other)

    def refused_streams(self) -> dict[str, BatchResult]:
        """The streams that read records and accepted none of them, every new one quarantined."""
        return {name: r for name, r in self.streams.items() if r.received and not r.accepted and r.quarantined}

    def as_dict(self) -> dict[str, Any]:
        """Counts as plain JSON."""
        return {
            "received": self.received, "accepted": self.accepted, "quarantined": self.quarantined,
            "unchanged": self.unchanged, "created": self.created, "updated": self.updated,
            "events": self.events, "reasons": dict(self.reasons),
        }


# A quarantine reason as it crosses from a reader process: (reason, message, field).
Problem = tuple[str, str, str | None]


class PreparedRecord(NamedTuple):
    """A source record already kept as canonical JSON, hashed and mapped, ready for :meth:`Pipeline.ingest`.

    What :func:`prepare` makes of a :class:`SourceRecord` without touching the store, so a
    reader process can do it while the store writes the batch before (``hub.sync``). The
    pipeline treats it exactly as the record it came from: ``payload_json`` is the raw record
    kept; ``entity_type``, ``document`` and ``references`` are what the mapper made of it, or
    ``error`` the mapper's quarantine reason. Plain values only: a batch crosses a pipe as
    plain tuples (:func:`prepared_rows`), and unpickling is paid by the store's process.

    """

    stream: str
    source_id: str
    modified: str | None
    payload_json: bytes
    hash: str
    entity_type: str | None = None
    document: dict[str, Any] | None = None
    references: dict[str, tuple[str, str]] | None = None
    error: Problem | None = None

    @property
    def cursor(self) -> StreamCursor:
        """The cursor that resumes just after this record."""
        return StreamCursor(modified=self.modified, key=self.source_id)


def prepared_rows(rows: Iterable[tuple[Any, ...]]) -> list[PreparedRecord]:
    """Prepared records from the plain tuples of their values (as they cross a pipe: a tuple
    pickles and unpickles in C, a named tuple through Python calls)."""
    make = tuple.__new__
    return [make(PreparedRecord, row) for row in rows]


def prepare(record: SourceRecord, mapper: Mapper) -> PreparedRecord:
    """Serialise, hash and map one source record (pure: no store, no clock).

    The map stage of a record, done by the sync's reader process while the store writes the
    batch before; validation, enrichment and everything after run in the pipeline (enrichers
    read the store), on every record alike.
    """
    payload = dumps(record.payload)
    stream, source_id, modified = record.stream, record.source_id, record.modified
    try:
        mapped = mapper(record)
    except QuarantineError as exc:
        return PreparedRecord(stream, source_id, modified, payload, content_hash(payload),
                              error=(exc.reason, exc.message, exc.field))
    return PreparedRecord(stream, source_id, modified, payload, content_hash(payload), mapped.entity_type,
                          mapped.document, mapped.references)


def _canonical(model: Canonical) -> dict[str, Any]:
    """The document the store keeps for a validated model."""
    return model.__pydantic_serializer__.to_python(  # model_dump without its wrapper
        model, mode="json", exclude_none=True, exclude=_ID_ONLY)


_ID_ONLY = {"id"}  # what the canonical document leaves out (the store keeps the id beside it)


def _bare(exc: QuarantineError) -> QuarantineError:
    """The error without its traceback: the traceback's frames reach the batch being ingested,
    which would then outlive the batch as cyclic garbage until a full collection."""
    exc.__traceback__ = exc.__cause__ = exc.__context__ = None
    return exc


class _Link(NamedTuple):
    """The source link a record already has: what the pipeline reads of it."""

    id: int
    entity_id: str
    content_hash: str
    version: int


@dataclass(eq=False, slots=True)
class _Item:
    """One record on its way through a batch.

    ``document`` is the mapped document (its references resolved to the hub's ids), then, once
    validated (``model``), the canonical one, and ``document_json`` its canonical JSON.
    """

    record: SourceRecord | PreparedRecord
    payload: bytes
    hash: str
    raw_id: int | None = None
    link: _Link | None = None
    entity_type: str = ""
    document: dict[str, Any] | None = None
    references: dict[str, tuple[str, str]] | None = None
    model: Canonical | None = None
    entity_id: str | None = None
    person_id: str | None = None
    document_json: bytes = b""
    error: QuarantineError | None = None
    held: bool = False  # a raw record of its key is quarantined: it may have an open quarantine entry
    fresh: bool = False  # its entity is new: id derived from its own key, which has no link yet

    def canonical(self) -> dict[str, Any]:
        """The canonical document of a validated record."""
        assert self.document is not None
        return self.document


_REASONS = (
    ("modulus-11", "NHS_NUMBER_CHECK_DIGIT"),
    ("NHS number", "NHS_NUMBER_INVALID"),
    ("postcode", "POSTCODE_INVALID"),
    ("in the future", "DATE_IN_FUTURE"),
    ("before start", "DATES_OUT_OF_ORDER"),
    ("before birth", "DATES_OUT_OF_ORDER"),
    ("approval date", "APPROVAL_INCOMPLETE"),
)


def _error_text(error: Any) -> str:
    """What a validation error says, without the value it refused (a name, a control character)."""
    if error["type"] == "string_pattern_mismatch" and (error.get("ctx") or {}).get("pattern") == SAFE_TEXT:
        return SAFE_TEXT_MESSAGE
    return str(error["msg"]).removeprefix("Value error, ")


def quarantine_reason(exc: ValidationError) -> QuarantineError:
    """Turn a pydantic validation error into a stable reason code and a readable message."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    message = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {_error_text(e)}" for e in exc.errors()
    )
    kind = first["type"]
    if kind == "missing":
        reason = "MISSING_FIELD"
    elif kind in ("string_too_long", "too_long"):
        reason = "TOO_LONG"
    elif kind == "string_pattern_mismatch" and (first.get("ctx") or {}).get("pattern") == SAFE_TEXT:
        reason = "CONTROL_CHARACTER"
    elif kind in ("date_from_datetime_parsing", "date_parsing", "date_from_datetime_inexact", "datetime_parsing"):
        reason = "DATE_INVALID"
    elif kind in ("enum", "literal_error"):
        reason = "CODE_INVALID"
    else:
        text = str(first["msg"])
        reason = next((code for needle, code in _REASONS if needle in text), "INVALID_VALUE")
    return QuarantineError(reason, message, field=loc or None)


class Pipeline:
    """Applies batches of source records to the canonical store."""

    def __init__(
        self,
        survivorship: Survivorship | None = None,
        resolver: PersonResolver | None = None,
        enrichers: Sequence[Enricher] = (),
    ) -> None:
        self.survivorship = survivorship or Survivorship()
        self.resolver: PersonResolver = resolver or ScoredResolver()
        self.enrichers = list(enrichers)
        self._remembering = 0
        # During a sync (remembering): (source, stream, source id) -> entity id of the links its batches
        # read or wrote, and the outbox mark they are current to.
        self._links: dict[tuple[str, str, str], str] = {}
        self._links_mark: tuple[int, str | None] | None = None

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Answer references from the links of the block's earlier batches while it runs (a sync).

        A source link's entity changes only when a merge or an unmerge re-points a person's links,
        and those write ``Person`` events: before each batch the links in memory are checked against
        the outbox as identity's in-memory index is (``hub.identity.blocks``), and dropped when another
        writer's ``Person`` event shows up. References they do not hold are looked up in the store.
        Re-entrant; while two blocks share the pipeline, neither keeps links.
        """
        self._remembering += 1
        self._forget_links()
        try:
            yield
        finally:
            self._remembering -= 1
            self._forget_links()

    def _forget_links(self) -> None:
        self._links, self._links_mark = {}, None

    # -- public -------------------------------------------------------------------------------

    def ingest(
        self,
        session: Session,
        source: str,
        records: Sequence[SourceRecord | PreparedRecord],
        mapper: Mapper,
        *,
        cursors: dict[str, StreamCursor] | None = None,
        retry_raw_ids: dict[tuple[str, str], int] | None = None,
    ) -> BatchResult:
        """Apply one batch in ``session``'s transaction; the caller commits.

        ``cursors`` are saved in the same transaction, so they move only with the
        data. A :class:`PreparedRecord` comes already mapped; ``mapper`` maps the others.
        ``retry_raw_ids`` (stream, source id) -> raw id re-runs records kept
        earlier (a quarantine retry) instead of keeping them again.
        """
        result = BatchResult(received=len(records))
        now = utcnow()
        items = self._prepare(records)
        self._attach_existing(session, source, items, retry_raw_ids or {})
        work = [i for i in items if self._needs_work(i, result, retry_raw_ids)]
        for item in work:
            self._map(item, mapper)
        self._resolve_references(session, source, work)
        self._validate(work)
        self._enrich(work)
        self._assign_entities(session, source, work)
        self._keep_raw(session, source, work, now)
        accepted = [i for i in work if i.error is None]
        self._quarantine(session, source, work, now, result)
        person_events = self._upsert(session, source, accepted, now, result)
        self._remember_links(session, source, items, person_events)
        if cursors:
            self.save_cursors(session, source, cursors, now)
        return result

    @staticmethod
    def save_cursors(session: Session, source: str, cursors: dict[str, StreamCursor], now: datetime) -> None:
        """Upsert each stream's cursor (in the caller's transaction)."""
        for stream, cursor in cursors.items():
            updated = session.execute(
                update(Cursor).where(Cursor.source == source, Cursor.stream == stream)
                .values(value=cursor.as_json(), updated_at=now)
            )
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                session.add(Cursor(source=source, stream=stream, value=cursor.as_json(), updated_at=now))
        session.flush()

    @staticmethod
    def load_cursor(session: Session, source: str, stream: str) -> StreamCursor:
        """The saved cursor of a stream (empty when never read)."""
        value = session.scalar(select(Cursor.value).where(Cursor.source == source, Cursor.stream == stream))
        return StreamCursor.from_json(value)

    # -- steps --------------------------------------------------------------------------------

    @staticmethod
    def _prepare(records: Sequence[SourceRecord | PreparedRecord]) -> list[_Item]:
        latest: dict[tuple[str, str], _Item] = {}
        for record in records:
            if isinstance(record, PreparedRecord):
                item = _Item(record, record.payload_json, record.hash)
            else:
                payload = dumps(record.payload)
                item = _Item(record, payload, content_hash(payload))
            latest[(record.stream, record.source_id)] = item
        return list(latest.values())

    @staticmethod
    def _attach_existing(
        session: Session, source: str, items: list[_Item], retry: dict[tuple[str, str], int]
    ) -> None:
        keys = [(i.record.stream, i.record.source_id) for i in items]
        link_cols = (SourceLink.stream, SourceLink.source_id, SourceLink.id, SourceLink.entity_id,
                     SourceLink.content_hash, SourceLink.version)
        links = {(stream, source_id): _Link(*rest)
                 for stream, source_id, *rest in by_stream_key(session, link_cols, SourceLink, source, keys)}
        raw_cols = (RawRecord.stream, RawRecord.source_id, RawRecord.content_hash, RawRecord.id, RawRecord.status)
        raws: dict[tuple[str, str, str], tuple[int, str]] = {}
        held: set[tuple[str, str]] = set()  # keys with a quarantined raw record (an open entry is one of them)
        for stream, source_id, digest, raw_id, status in by_stream_key(session, raw_cols, RawRecord, source, keys):
            raws[(stream, source_id, digest)] = (raw_id, status)
            if status == "quarantined":
                held.add((stream, source_id))
        for item in items:
            key = (item.record.stream, item.record.source_id)
            item.link = links.get(key)
            item.held = key in held
            raw = raws.get((*key, item.hash))
            if key in retry:
                item.raw_id = retry[key]
                item.held = True
            elif raw is not None:
                item.raw_id = raw[0]
                if raw[1] == "quarantined":
                    item.error = QuarantineError("ALREADY_QUARANTINED", "kept earlier; retry it explicitly")

    @staticmethod
    def _needs_work(item: _Item, result: BatchResult, retry: dict[tuple[str, str], int] | None) -> bool:
        key = (item.record.stream, item.record.source_id)
        if retry and key in retry:
            return True
        if item.error is not None:  # the same bad content again: already in quarantine
            result.unchanged += 1
            return False
        if item.link is not None and item.link.content_hash == item.hash:
            result.unchanged += 1
            return False
        return True

    @staticmethod
    def _map(item: _Item, mapper: Mapper) -> None:
        record = item.record
        if isinstance(record, PreparedRecord):
            if record.error is not None:
                item.error = QuarantineError(record.error[0], record.error[1], field=record.error[2])
            elif record.entity_type is not None:
                item.entity_type, item.document, item.references = (
                    record.entity_type, record.document, record.references)
            return
        try:
            mapped = mapper(record)
        except QuarantineError as exc:
            item.error = _bare(exc)
        else:
            item.entity_type, item.document, item.references = mapped.entity_type, mapped.document, mapped.references

    def _resolve_references(self, session: Session, source: str, items: list[_Item]) -> None:
        wanted: set[tuple[str, str]] = set()
        for item in items:
            if item.references:
                wanted.update(item.references.values())
        found: dict[tuple[str, str], str] = {}
        if self._current_links(session):
            known = self._links
            for ref in wanted:
                entity_id = known.get((source, *ref))
                if entity_id is not None:
                    found[ref] = entity_id
        missing = sorted(wanted - found.keys()) if found else sorted(wanted)
        cols = (SourceLink.stream, SourceLink.source_id, SourceLink.entity_id)
        found.update(((stream, source_id), entity_id)
                     for stream, source_id, entity_id in by_stream_key(session, cols, SourceLink, source, missing))
        for item in items:
            if not item.references:
                continue
            for target, ref in item.references.items():
                entity_id = found.get(ref)
                if entity_id is None:
                    item.error = QuarantineError(
                        "UNRESOLVED_REFERENCE", f"{target} points at {ref[0]} {ref[1]}, which the hub does not hold",
                        field=target,
                    )
                    break
                if item.document is not None:
                    item.document[target] = entity_id

    def _current_links(self, session: Session) -> bool:
        """Whether the links in memory may answer this batch's references (see :meth:`remembering`);
        when not, they are dropped and the batch starts a new mark."""
        if self._remembering != 1:
            return False
        if self._links_mark is not None and persons_unchanged_since(session, self._links_mark):
            return True
        self._links, self._links_mark = {}, last_event(session)
        return False

    def _remember_links(self, session: Session, source: str, items: list[_Item], person_events: int) -> None:
        """Take in the links this batch read or wrote, after its outbox rows (in its transaction)."""
        if self._remembering != 1 or self._links_mark is None:
            return
        others, latest = persons_written_since(session, self._links_mark, person_events)
        if others:  # another writer's Person event since the mark: links may have been re-pointed
            self._forget_links()
            return
        self._links_mark = latest
        links = self._links
        for item in items:
            entity_id = item.link.entity_id if item.link is not None else (
                item.entity_id if item.error is None else None)
            if entity_id is not None:
                links[(source, item.record.stream, item.record.source_id)] = entity_id

    def _enrich(self, items: list[_Item]) -> None:
        for enricher in self.enrichers:
            live = [i for i in items if i.model is not None and i.error is None]
            if live:
                for item, model in zip(live, enricher.enrich([i.model for i in live if i.model]), strict=True):
                    item.model = model

    def _validate(self, items: list[_Item]) -> None:
        for item in items:
            if item.error is not None or not item.entity_type:
                continue
            cls = ENTITIES[item.entity_type]
            try:
                item.model = cls.model_validate(item.document)
            except ValidationError as exc:
                item.error = quarantine_reason(exc)

    def _assign_entities(self, session: Session, source: str, items: list[_Item]) -> None:
        candidates: list[tuple[_Item, PersonCandidate]] = []
        for item in items:
            if item.error is not None or item.model is None:
                continue
            if item.link is not None:
                item.entity_id = item.link.entity_id
                continue
            record = item.record
            own_id = entity_id_for(source, record.stream, record.source_id)
            if item.entity_type != Person.entity_type:
                item.entity_id, item.fresh = own_id, True
            else:
                assert isinstance(item.model, Person)
                candidates.append((item, PersonCandidate(source, record.stream, record.source_id,
                                                         MatchRecord.from_person(item.model, own_id), own_id)))
        if candidates:
            batch = [c for _, c in candidates]
            resolutions = self.resolver.resolve_batch(session, batch)
            for (item, cand), res in zip(candidates, resolutions, strict=True):
                item.entity_id = res.person_id or cand.new_id
                item.fresh = res.person_id is None
            self.resolver.record_batch(session, batch, resolutions)
        for item in items:
            if item.error is not None:
                continue
            if item.entity_type == Person.entity_type:
                item.person_id = item.entity_id
            elif item.model is not None:
                item.person_id = getattr(item.model, "person_id", None)

    @staticmethod
    def _keep_raw(session: Session, source: str, items: list[_Item], now: datetime) -> None:
        fresh = [i for i in items if i.raw_id is None]
        again = [i for i in items if i.raw_id is not None]
        if fresh:
            rows = [
                [source, i.record.stream, i.record.source_id, i.hash, i.payload.decode(), now, i.record.modified,
                 "quarantined" if i.error else "accepted"]
                for i in fresh
            ]
            for item, raw_id in zip(fresh, _insert_raw(session, source, fresh, rows), strict=True):
                item.raw_id = raw_id
        if again:
            bulk_update(session, RawRecord, [
                {"id": i.raw_id, "status": "quarantined" if i.error else "accepted"} for i in again])

    @staticmethod
    def _quarantine(session: Session, source: str, items: list[_Item], now: datetime, result: BatchResult) -> None:
        bad = [i for i in items if i.error is not None]
        if not bad:
            return
        existing = {
            q.raw_record_id: q
            for q in session.scalars(select(Quarantine).where(Quarantine.raw_record_id.in_([i.raw_id for i in bad])))
        }
        fresh: list[list[Any]] = []
        for item in bad:
            err = item.error
            assert err is not None and item.raw_id is not None
            result.quarantined += 1
            result.reasons[err.reason] += 1
            entry = {"at": now.isoformat(), "reason": err.reason, "message": err.message}
            q = existing.get(item.raw_id)
            if q is None:
                fresh.append([item.raw_id, source, item.record.stream, item.record.source_id, err.reason, err.message,
                              err.field, "open", 1, [entry], now, now])
            else:
                q.reason, q.message, q.field, q.status = err.reason, err.message, err.field, "open"
                q.attempts += 1
                q.history = [*q.history, entry]
                q.updated_at = now
        session.flush()
        bulk_insert(session, Quarantine, _QUARANTINE_COLUMNS, fresh)  # in batch order, as the session would have

    def _upsert(self, session: Session, source: str, items: list[_Item], now: datetime, result: BatchResult) -> int:
        """Write the batch's accepted records; returns how many ``Person`` events it wrote."""
        if not items:
            return 0
        result.accepted += len(items)
        _settle_quarantine(session, source, items, now)
        # provenance first, so survivorship sees this batch's contributions
        new_links: list[list[Any]] = []
        changed_links: list[dict[str, Any]] = []
        for item in items:
            if item.model is not None:
                item.document = _canonical(item.model)
            item.document_json = dumps(item.document)
            doc_json = item.document_json.decode()
            if item.link is None:
                new_links.append([source, item.record.stream, item.record.source_id, item.entity_type, item.entity_id,
                                  item.hash, doc_json, item.raw_id, 1, now, now])
            else:
                changed_links.append({
                    "id": item.link.id, "content_hash": item.hash, "document": doc_json,
                    "raw_record_id": item.raw_id, "version": item.link.version + 1, "last_seen": now,
                })
        write_source_links(session, new_links, changed_links)

        by_entity: dict[str, list[_Item]] = defaultdict(list)
        for item in items:
            assert item.entity_id is not None
            by_entity[item.entity_id].append(item)
        entity_ids = list(by_entity)
        # Only the pipeline writes entities, each new one with the link of the record whose key its id is
        # derived from: an entity whose only record is fresh (that key had no link) cannot exist yet.
        maybe = [eid for eid, group in by_entity.items() if len(group) > 1 or not group[0].fresh]
        existing: dict[str, tuple[int, str]] = {}
        others: dict[str, list[Contribution]] = defaultdict(list)
        existing.update({
            eid: (ver, h) for eid, ver, h in rows_in(
                session, "SELECT id, version, content_hash FROM entities WHERE id IN ({in})", (), maybe)
        })
        shared = [eid for eid in entity_ids if eid in existing or len(by_entity[eid]) > 1]
        for chunk in chunks(shared, _CHUNK):
            for eid, src, seen, doc in session.execute(
                select(SourceLink.entity_id, SourceLink.source, SourceLink.last_seen, SourceLink.document)
                .where(SourceLink.entity_id.in_(chunk))
            ):
                others[eid].append(Contribution(src, seen, orjson.loads(doc)))

        inserts: list[list[Any]] = []
        updates: list[dict[str, Any]] = []
        events: list[NewEvent] = []
        persons: list[PersonWrite] = []
        for eid, group in by_entity.items():
            head = group[-1]
            etype = head.entity_type
            own = eid not in others and len(group) == 1  # the only source of a new entity: its document as is
            golden: dict[str, Any] | None
            if own:
                golden, golden_json = head.document, head.document_json
            else:
                contributions = others.get(eid) or [Contribution(source, now, i.canonical()) for i in group]
                golden = self.survivorship.merge(etype, contributions) if len(contributions) > 1 else (
                    contributions[0].document)
                golden_json = dumps(golden)
            golden_hash = content_hash(golden_json)
            person_id = eid if etype == "Person" else head.person_id
            if eid in existing:
                version, old_hash = existing[eid]
                if old_hash == golden_hash:
                    continue
                version += 1
                kind = "updated"
                updates.append({"id": eid, "version": version, "content_hash": golden_hash,
                                "document": golden_json.decode(), "person_id": person_id, "updated_at": now})
                result.updated += 1
            else:
                version, kind = 1, "created"
                inserts.append([eid, etype, person_id, 1, golden_hash, golden_json.decode(), now, now])
                result.created += 1
            if etype == "Person":
                persons.append(person_write(eid, kind, golden or {}))
            payload = dumps({"id": eid, "person_id": person_id, **(golden or {})})
            events.append(NewEvent(event_id_for(eid, version, kind), etype, eid, person_id, kind, version,
                                   person_id or eid, source, now, payload))
        if inserts:
            insert_entities(session, inserts)
        if updates:
            update_entities(session, updates)
        written = write_person_index(session, persons) if persons else None
        result.events += append_events(session, events)
        if written is not None:  # after the outbox rows: see hub.identity.blocks
            self.resolver.persons_written(session, PERSON_INDEX_COLUMNS, *written)
        return len(persons)


def _insert_raw(session: Session, source: str, items: list[_Item], rows: list[list[Any]]) -> list[int]:
    """Insert the raw rows of ``items`` (``rows``, in the same order); their ids, in that order."""
    if session.get_bind().dialect.name == "sqlite":
        bulk_insert(session, RawRecord, _RAW_COLUMNS, rows)
        ids = rowids_of_last_insert(session, RawRecord, len(rows))
        if ids is not None:
            return ids
        cols = (RawRecord.stream, RawRecord.source_id, RawRecord.content_hash, RawRecord.id)
        keys = [(i.record.stream, i.record.source_id) for i in items]
        found = {(stream, source_id, digest): raw_id
                 for stream, source_id, digest, raw_id in by_stream_key(session, cols, RawRecord, source, keys)}
        return [found[(i.record.stream, i.record.source_id, i.hash)] for i in items]
    return [raw_id for (raw_id,) in insert_returning(session, RawRecord, _RAW_COLUMNS, rows, ("id",))]


# The columns of the rows the pipeline inserts, in the order its rows give them.
_RAW_COLUMNS = ("source", "stream", "source_id", "content_hash", "payload", "received_at", "source_modified", "status")
_QUARANTINE_COLUMNS = ("raw_record_id", "source", "stream", "source_id", "reason", "message", "field", "status",
                       "attempts", "history", "created_at", "updated_at")


def _settle_quarantine(session: Session, source: str, items: list[_Item], now: datetime) -> None:
    """Accepted records close their open quarantine entries: their own raw row's as resolved,
    an older version's of the same source record as superseded.

    An open entry's raw record has status ``quarantined`` (the pipeline sets both in one batch and
    settles the entry in the batch that accepts the raw record again), so only the keys
    ``_attach_existing`` found such a raw record for are looked up.
    """
    cols = (Quarantine.id, Quarantine.stream, Quarantine.source_id, Quarantine.raw_record_id)
    keys = [(i.record.stream, i.record.source_id) for i in items if i.held]
    if not keys:
        return
    open_entries = list(by_stream_key(session, cols, Quarantine, source, keys, " AND status = 'open'"))
    if not open_entries:
        return
    accepted_raw = {(i.record.stream, i.record.source_id): i.raw_id for i in items}
    for entry_id, stream, source_id, raw_record_id in open_entries:
        own = accepted_raw.get((stream, source_id)) == raw_record_id
        session.execute(
            update(Quarantine).where(Quarantine.id == entry_id).values(
                status="resolved" if own else "superseded", updated_at=now)
        )
