"""Stage 1, map: source records to canonical shape, and their references to the hub's ids.

:func:`prepare` is the map stage as the sync's reader process runs it (pure: no store, no
clock); :func:`map_records` takes over a record mapped there, or maps it here.
:func:`resolve_references` turns each reference field's (stream, source id) into the id of the
entity that source record became, from the links a sync's earlier batches read or wrote
(:class:`LinkMemory`) or else from the store; a reference the hub does not hold quarantines
the record.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from hub.contract import SourceRecord
from hub.errors import QuarantineError
from hub.identity.blocks import last_event, persons_unchanged_since, persons_written_since
from hub.pipeline.record import Mapper, PreparedRecord, Record
from hub.store.bulk import by_stream_key
from hub.store.canonical import canonical_json, content_hash
from hub.store.tables import SourceLink


def prepare(record: SourceRecord, mapper: Mapper) -> PreparedRecord:
    """Serialise, hash and map one source record (pure: no store, no clock).

    The map stage of a record, done by the sync's reader process while the store writes the
    batch before; validation, enrichment and everything after run in the pipeline (enrichers
    read the store), on every record alike.
    """
    payload = canonical_json(record.payload)
    stream, source_id, modified = record.stream, record.source_id, record.modified
    try:
        mapped = mapper(record)
    except QuarantineError as exc:
        return PreparedRecord(stream, source_id, modified, payload, content_hash(payload),
                              error=(exc.reason, exc.message, exc.field))
    return PreparedRecord(stream, source_id, modified, payload, content_hash(payload), mapped.entity_type,
                          mapped.document, mapped.references)


def bare(exc: QuarantineError) -> QuarantineError:
    """The error without its traceback: the traceback's frames reach the batch being ingested,
    which would then outlive the batch as cyclic garbage until a full collection."""
    exc.__traceback__ = exc.__cause__ = exc.__context__ = None
    return exc


def map_records(items: list[Record], mapper: Mapper) -> None:
    """Each record's entity type, document and references (or its quarantine reason)."""
    for item in items:
        record = item.record
        if isinstance(record, PreparedRecord):
            if record.error is not None:
                item.error = QuarantineError(record.error[0], record.error[1], field=record.error[2])
            elif record.entity_type is not None:
                item.entity_type, item.document, item.references = (
                    record.entity_type, record.document, record.references)
            continue
        try:
            mapped = mapper(record)
        except QuarantineError as exc:
            item.error = bare(exc)
        else:
            item.entity_type, item.document, item.references = mapped.entity_type, mapped.document, mapped.references


class LinkMemory:
    """During a sync: (source, stream, source id) -> entity id of the links its batches read or wrote.

    A source link's entity changes only when a merge or an unmerge re-points a person's links,
    and those write ``Person`` events: before each batch the links in memory are checked against
    the outbox as identity's in-memory index is (``hub.identity.blocks``), and dropped when another
    writer's ``Person`` event shows up. Kept only while exactly one sync uses the pipeline
    (``users == 1``).
    """

    def __init__(self) -> None:
        self.users = 0
        self.links: dict[tuple[str, str, str], str] = {}
        self.mark: tuple[int, str | None] | None = None

    def forget(self) -> None:
        """Drop every link in memory."""
        self.links, self.mark = {}, None

    def current(self, session: Session) -> bool:
        """Whether the links in memory may answer this batch's references; when not, they are dropped
        and the batch starts a new mark."""
        if self.users != 1:
            return False
        if self.mark is not None and persons_unchanged_since(session, self.mark):
            return True
        self.links, self.mark = {}, last_event(session)
        return False

    def remember(self, session: Session, source: str, items: list[Record], person_events: int) -> None:
        """Take in the links this batch read or wrote, after its outbox rows (in its transaction)."""
        if self.users != 1 or self.mark is None:
            return
        others, latest = persons_written_since(session, self.mark, person_events)
        if others:  # another writer's Person event since the mark: links may have been re-pointed
            self.forget()
            return
        self.mark = latest
        links = self.links
        for item in items:
            entity_id = item.link.entity_id if item.link is not None else (
                item.entity_id if item.error is None else None)
            if entity_id is not None:
                links[(source, item.record.stream, item.record.source_id)] = entity_id


def resolve_references(session: Session, source: str, items: list[Record], memory: LinkMemory) -> None:
    """Each reference field set to the hub's id of the record it names; unresolved: quarantined."""
    wanted: set[tuple[str, str]] = set()
    for item in items:
        if item.references:
            wanted.update(item.references.values())
    found: dict[tuple[str, str], str] = {}
    if memory.current(session):
        known = memory.links
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
