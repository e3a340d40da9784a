"""Stage 5, write: the batch's raw records, quarantine entries, provenance and golden records.

Every canonical write goes through the golden-record writer (:mod:`hub.store.writer`): source links,
entities (the golden document by survivorship over every source's contribution, written only when
its content hash changed) and the person index. Raw records and quarantine entries are the
pipeline's own tables. :func:`attach_existing` and :func:`needs_work` read what the store already
holds of a batch before anything is mapped: the same content twice changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.errors import QuarantineError
from hub.pipeline.record import BatchResult, Link, Record
from hub.pipeline.validate import canonical
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
from hub.store.canonical import canonical_json as dumps
from hub.store.canonical import content_hash
from hub.store.tables import Quarantine, RawRecord, SourceLink
from hub.store.writer import (
    PersonWrite,
    insert_entities,
    person_write,
    update_entities,
    write_person_index,
    write_source_links,
)
from hub.survivorship import Contribution, Survivorship


class Change(NamedTuple):
    """An entity whose golden document the batch changed: what its change event says."""

    entity_id: str
    entity_type: str
    person_id: str | None
    kind: str
    version: int
    golden: dict[str, Any]


class Written(NamedTuple):
    """What :func:`write` changed: the entities, and the person index rows it wrote (None: no person)."""

    changes: list[Change]
    persons: tuple[list[tuple[Any, ...]], list[str], list[tuple[str, str, str]]] | None


def attach_existing(
    session: Session, source: str, items: list[Record], retry: dict[tuple[str, str], int]
) -> None:
    """What the store already holds of each record: its source link, its raw record (the same content
    kept earlier), and whether a raw record of its key is quarantined."""
    keys = [(i.record.stream, i.record.source_id) for i in items]
    link_cols = (SourceLink.stream, SourceLink.source_id, SourceLink.id, SourceLink.entity_id,
                 SourceLink.content_hash, SourceLink.version)
    links = {(stream, source_id): Link(*rest)
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


def needs_work(item: Record, result: BatchResult, retry: dict[tuple[str, str], int] | None) -> bool:
    """Whether a record is new or changed (or retried); the same content again counts as unchanged."""
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


def keep_raw(session: Session, source: str, items: list[Record], now: datetime) -> None:
    """Every record's raw row: new content inserted verbatim, content kept earlier re-marked."""
    fresh = [i for i in items if i.raw_id is None]
    again = [i for i in items if i.raw_id is not None]
    if fresh:
        rows = [
            [source, i.record.stream, i.record.source_id, i.hash, i.payload.decode(), now, i.record.modified,
             "quarantined" if i.error else "accepted"]
            for i in fresh
        ]
        for item, raw_id in zip(fresh, insert_raw(session, source, fresh, rows), strict=True):
            item.raw_id = raw_id
    if again:
        bulk_update(session, RawRecord, [
            {"id": i.raw_id, "status": "quarantined" if i.error else "accepted"} for i in again])


def quarantine(session: Session, source: str, items: list[Record], now: datetime, result: BatchResult) -> None:
    """Each bad record's quarantine entry: a new one, or the existing one opened again with its history."""
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


def write(session: Session, source: str, items: list[Record], now: datetime, result: BatchResult,
          survivorship: Survivorship) -> Written:
    """Write the batch's accepted records through the golden-record writer: provenance first, then each
    entity whose golden document changed (survivorship over every source's contribution), with its
    person index; what changed, for :mod:`~hub.pipeline.emit`."""
    if not items:
        return Written([], None)
    result.accepted += len(items)
    settle_quarantine(session, source, items, now)
    # provenance first, so survivorship sees this batch's contributions
    new_links: list[list[Any]] = []
    changed_links: list[dict[str, Any]] = []
    for item in items:
        if item.model is not None:
            item.document = canonical(item.model)
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

    by_entity: dict[str, list[Record]] = defaultdict(list)
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
    for chunk in chunks(shared, CHUNK):
        for eid, src, seen, doc in session.execute(
            select(SourceLink.entity_id, SourceLink.source, SourceLink.last_seen, SourceLink.document)
            .where(SourceLink.entity_id.in_(chunk))
        ):
            others[eid].append(Contribution(src, seen, orjson.loads(doc)))

    inserts: list[list[Any]] = []
    updates: list[dict[str, Any]] = []
    changes: list[Change] = []
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
            golden = survivorship.merge(etype, contributions) if len(contributions) > 1 else (
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
        changes.append(Change(eid, etype, person_id, kind, version, golden or {}))
    if inserts:
        insert_entities(session, inserts)
    if updates:
        update_entities(session, updates)
    return Written(changes, write_person_index(session, persons) if persons else None)


def insert_raw(session: Session, source: str, items: list[Record], rows: list[list[Any]]) -> list[int]:
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


def settle_quarantine(session: Session, source: str, items: list[Record], now: datetime) -> None:
    """Accepted records close their open quarantine entries: their own raw row's as resolved,
    an older version's of the same source record as superseded.

    An open entry's raw record has status ``quarantined`` (the pipeline sets both in one batch and
    settles the entry in the batch that accepts the raw record again), so only the keys
    ``attach_existing`` found such a raw record for are looked up.
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
