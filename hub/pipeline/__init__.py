"""The ingest pipeline, as stages: map -> validate -> enrich -> resolve -> write -> emit.

:meth:`Pipeline.ingest` takes one batch of source records and, in the caller's transaction, keeps
every new raw record verbatim, maps it (:mod:`~hub.pipeline.map`: references resolved to the hub's
ids), validates it (:mod:`~hub.pipeline.validate`: a bad one parked in quarantine with its reason),
adds what the hub knows (:mod:`~hub.pipeline.enrich`), resolves which entity and golden person it is
(:mod:`~hub.pipeline.resolve`), writes provenance and every golden record whose document changed by
the survivorship rules (:mod:`~hub.pipeline.write`, through the golden-record writer) and appends a
change event for each (:mod:`~hub.pipeline.emit`). One record type (:class:`~hub.pipeline.record.Record`)
flows through them; each stage is a function of the batch, and only this module calls them.

The same record twice changes nothing the second time (content hash), and every id the pipeline
makes is derived from the source's own key, so a batch that was rolled back and run again leaves
exactly the state of a single run. The sync's reader process runs the map stage ahead
(:func:`~hub.pipeline.map.prepare`); everything else runs here, on every record alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.contract import SourceRecord, StreamCursor
from hub.identity.resolver import PersonResolver
from hub.pipeline.emit import emit
from hub.pipeline.enrich import Enricher, enrich
from hub.pipeline.map import LinkMemory, map_records, prepare, resolve_references
from hub.pipeline.record import BatchResult, Mapper, PreparedRecord, prepared_rows, records_of
from hub.pipeline.resolve import resolve
from hub.pipeline.validate import quarantine_reason, validate
from hub.pipeline.write import attach_existing, keep_raw, needs_work, quarantine, write
from hub.store.canonical import ID_NAMESPACE, content_hash, entity_id_for, event_id_for
from hub.store.canonical import canonical_json as dumps
from hub.store.tables import Cursor, utcnow
from hub.store.writer import person_index_row, search_key
from hub.survivorship import Survivorship

__all__ = ["ID_NAMESPACE", "BatchResult", "Enricher", "Mapper", "Pipeline", "PreparedRecord", "content_hash", "dumps",
           "entity_id_for", "event_id_for", "person_index_row", "prepare", "prepared_rows", "quarantine_reason",
           "search_key"]


class Pipeline:
    """Applies batches of source records to the canonical store, stage by stage."""

    def __init__(
        self,
        survivorship: Survivorship | None = None,
        resolver: PersonResolver | None = None,
        enrichers: Sequence[Enricher] = (),
    ) -> None:
        self.survivorship = survivorship or Survivorship()
        self.resolver = resolver or PersonResolver()
        self.enrichers = list(enrichers)
        self._links = LinkMemory()

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Answer references from the links of the block's earlier batches while it runs (a sync;
        :class:`~hub.pipeline.map.LinkMemory`). Re-entrant; while two blocks share the pipeline,
        neither keeps links."""
        self._links.users += 1
        self._links.forget()
        try:
            yield
        finally:
            self._links.users -= 1
            self._links.forget()

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
        items = records_of(records)
        attach_existing(session, source, items, retry_raw_ids or {})
        work = [i for i in items if needs_work(i, result, retry_raw_ids)]
        map_records(work, mapper)
        resolve_references(session, source, work, self._links)
        validate(work)
        enrich(work, self.enrichers)
        resolve(session, source, work, self.resolver)
        keep_raw(session, source, work, now)
        quarantine(session, source, work, now, result)
        written = write(session, source, [i for i in work if i.error is None], now, result, self.survivorship)
        person_events = emit(session, source, written, now, result, self.resolver)
        self._links.remember(session, source, items, person_events)
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
