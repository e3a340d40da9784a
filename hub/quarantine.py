"""Quarantine: the records that could not be accepted, and re-running them after a fix.

A retry re-maps the raw record exactly as it was kept (so a fixed mapping or a
now-present reference lets it through) and keeps each attempt in the entry's
history. A record overtaken by a newer version of the same source record is
marked superseded rather than applied over the newer data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from hub.access.decision import Access
from hub.contract import Adapter, SourceRecord
from hub.errors import NotFound
from hub.pipeline import BatchResult, Pipeline
from hub.store.db import Store
from hub.store.tables import Entity, Quarantine, RawRecord, SourceLink, utcnow


@dataclass(frozen=True, slots=True)
class QuarantineFilter:
    """Which entries to list or retry."""

    source: str | None = None
    reason: str | None = None
    status: str | None = "open"


def list_entries(session: Session, flt: QuarantineFilter, limit: int = 100) -> list[Quarantine]:
    """Quarantine entries, newest first."""
    query = select(Quarantine).order_by(Quarantine.id.desc()).limit(limit)
    if flt.source:
        query = query.where(Quarantine.source == flt.source)
    if flt.reason:
        query = query.where(Quarantine.reason == flt.reason)
    if flt.status:
        query = query.where(Quarantine.status == flt.status)
    return list(session.scalars(query))


def record_subjects(session: Session, keys: list[tuple[str, str, str]]
                    ) -> dict[tuple[str, str, str], tuple[str | None, str | None]]:
    """What each source record (source, stream, source id) is (its canonical type) and whose (the person id),
    as far as the hub knows: from the record's own link when it was ever accepted, else the type another
    record of its stream became."""
    keys = list(dict.fromkeys(keys))
    found: dict[tuple[str, str, str], tuple[str | None, str | None]] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for source, stream, source_id, etype, person_id in session.execute(
                select(SourceLink.source, SourceLink.stream, SourceLink.source_id, Entity.entity_type,
                       Entity.person_id).join(Entity, Entity.id == SourceLink.entity_id)
                .where(tuple_(SourceLink.source, SourceLink.stream, SourceLink.source_id).in_(chunk))):
            found[(source, stream, source_id)] = (etype, person_id)
    types: dict[tuple[str, str], str | None] = {}
    for key in keys:
        if key not in found:
            pair = key[:2]
            if pair not in types:
                types[pair] = session.scalar(select(Entity.entity_type).join(
                    SourceLink, SourceLink.entity_id == Entity.id).where(
                    SourceLink.source == pair[0], SourceLink.stream == pair[1]).limit(1))
            found[key] = (types[pair], None)
    return found


def withheld_entries(session: Session, access: Access, entries: list[Quarantine]) -> dict[int, str]:
    """Why each entry's source record (payload, and the message quoting its values) is withheld from the
    caller, by entry id; entries they may see are left out."""
    subjects = record_subjects(session, [(q.source, q.stream, q.source_id) for q in entries])
    access.people({pid for _, pid in subjects.values() if pid}, exact=False)  # decided together
    withheld = {}
    for q in entries:
        why = access.source_record(*subjects[(q.source, q.stream, q.source_id)])
        if why is not None:
            withheld[q.id] = why
    return withheld


def show_entry(session: Session, entry_id: int, access: Access | None = None) -> dict[str, Any]:
    """One entry with its raw record as kept, unless the access decision withholds it from the caller: a
    record of a section their role may not read, or of a person they may not read (a seal). ``access`` None
    is the operator at the hub's own console (``carehub quarantine show``), who holds the store anyway."""
    q = session.get(Quarantine, entry_id)
    if q is None:
        raise NotFound(f"no quarantine entry {entry_id}")
    raw = session.get(RawRecord, q.raw_record_id)
    assert raw is not None
    withheld = withheld_entries(session, access, [q]).get(q.id) if access is not None else None
    return {
        "id": q.id, "source": q.source, "stream": q.stream, "source_id": q.source_id,
        "reason": q.reason, "message": withheld or q.message, "field": q.field, "status": q.status,
        "attempts": q.attempts, "history": [] if withheld else q.history, "created_at": q.created_at.isoformat(),
        "raw": {"id": raw.id, "received_at": raw.received_at.isoformat(), "sha256": raw.content_hash,
                "payload": None if withheld else orjson.loads(raw.payload), "withheld": withheld},
    }


def retry(
    store: Store,
    pipeline: Pipeline,
    adapter_for: Callable[[str], Adapter],
    *,
    ids: list[int] | None = None,
    flt: QuarantineFilter | None = None,
) -> BatchResult:
    """Re-run the chosen open entries through the pipeline; returns what happened."""
    total = BatchResult()
    with store.session() as session:
        query = select(Quarantine, RawRecord).join(RawRecord, RawRecord.id == Quarantine.raw_record_id).where(
            Quarantine.status == "open")
        if ids:
            query = query.where(Quarantine.id.in_(ids))
        if flt and flt.source:
            query = query.where(Quarantine.source == flt.source)
        if flt and flt.reason:
            query = query.where(Quarantine.reason == flt.reason)
        rows = session.execute(query.order_by(Quarantine.id)).all()
        if ids and len(rows) < len(set(ids)):
            found = {q.id for q, _ in rows}
            missing = sorted(set(ids) - found)
            raise NotFound(f"no open quarantine entries {missing}")
        by_source: dict[str, list[tuple[Quarantine, RawRecord]]] = {}
        for q, raw in rows:
            by_source.setdefault(q.source, []).append((q, raw))
        for source, entries in by_source.items():
            live = _drop_superseded(session, entries)
            if not live:
                continue
            adapter = adapter_for(source)
            records = [SourceRecord(raw.stream, raw.source_id, orjson.loads(raw.payload), raw.source_modified)
                       for _, raw in live]
            retry_ids = {(raw.stream, raw.source_id): raw.id for _, raw in live}
            total.add(pipeline.ingest(session, source, records, adapter.map, retry_raw_ids=retry_ids))
    return total


def _drop_superseded(
    session: Session, entries: list[tuple[Quarantine, RawRecord]]
) -> list[tuple[Quarantine, RawRecord]]:
    live = []
    for q, raw in entries:
        newer = session.scalar(
            select(SourceLink.raw_record_id).where(
                SourceLink.source == raw.source, SourceLink.stream == raw.stream,
                SourceLink.source_id == raw.source_id, SourceLink.raw_record_id > raw.id)
        )
        if newer is not None:
            q.status = "superseded"
            q.updated_at = utcnow()
            q.history = [*q.history, {"at": q.updated_at.isoformat(), "reason": "SUPERSEDED",
                                      "message": f"raw record {newer} is newer and was accepted"}]
            continue
        live.append((q, raw))
    return live
