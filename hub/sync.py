"""Running a sync: pull each stream of a source in batches through the pipeline.

Each batch is one transaction holding its raw records, canonical changes,
outbox events and the stream's cursor, so a sync killed at any moment resumes
where the last committed batch ended and reaches the state of an unbroken run.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import text, update

from hub.contract import Adapter, SourceRecord
from hub.errors import HubError
from hub.pipeline import BatchResult, Pipeline
from hub.store.db import Store
from hub.store.tables import SyncRun, utcnow

Progress = Callable[[str, int], None]

# A batch keeps thousands of records, documents and models alive until it commits, so the
# collector's default thresholds promote them and then run full collections over the whole
# heap again and again (a fifth of a migration's time). During a sync the heap that existed
# before it is frozen out of collection and young collections run less often; both are
# restored when the last running sync ends. A full collection runs between batches
# (collect_between_batches), so cyclic garbage never outlives the next batch.
_GC_THRESHOLD = (50_000, 20, 100)
_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def batch_friendly_gc() -> Iterator[None]:
    """Tune the garbage collector for batch ingest for the duration of the block (re-entrant)."""
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(*_GC_THRESHOLD)
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_saved)
                gc.unfreeze()


def collect_between_batches() -> None:
    """A full collection once a batch is done (only while a sync tunes the collector).

    The batch's objects are gone by then and what was alive before it is frozen, so the
    collection is short; the survivors are frozen in turn. No batch's cyclic garbage
    outlives the next batch.
    """
    if _gc_users:
        gc.collect()
        gc.freeze()


# The tables a sync grows. PostgreSQL plans the pipeline's lookups by key from their statistics;
# a table that was empty when last analyzed (or never analyzed, with autovacuum off or outpaced
# by a migration) is planned as tiny, and each lookup then scans a whole stream: a migration
# slowed down as the tables grew. A sync analyzes them after its first batch and whenever it has
# doubled the rows it has written since.
_ANALYZED_TABLES = ("raw_records", "source_links", "entities", "outbox", "person_index", "person_identifiers",
                    "quarantine")


class PlannerStatistics:
    """Keeps PostgreSQL's statistics of the pipeline's tables in step with a sync (no-op elsewhere)."""

    def __init__(self, store: Store) -> None:
        self.enabled = store.engine.dialect.name == "postgresql"
        self.written = 0
        self.next_at = 1

    def after_batch(self, store: Store, rows: int) -> None:
        """Count a committed batch; ANALYZE when the rows written have doubled."""
        if not self.enabled:
            return
        self.written += rows
        if self.written >= self.next_at:
            with store.session() as session:
                session.execute(text(f"ANALYZE {', '.join(_ANALYZED_TABLES)}"))
            self.next_at = self.written * 2


def sync_source(
    store: Store,
    adapter: Adapter,
    pipeline: Pipeline,
    *,
    batch_size: int = 2000,
    progress: Progress | None = None,
) -> BatchResult:
    """Pull every stream of ``adapter`` after its cursor and apply it; returns the counts."""
    started = utcnow()
    with store.session() as session:
        run = SyncRun(source=adapter.name, started_at=started, outcome="running", counts={})
        session.add(run)
        session.flush()
        run_id = run.id
    total = BatchResult()
    statistics = PlannerStatistics(store)
    try:
        with batch_friendly_gc():
            for spec in adapter.streams():
                total.add(sync_stream(store, adapter, pipeline, spec.name, started, batch_size, progress,
                                      statistics))
    except HubError as exc:
        _finish(store, run_id, "failed", total, str(exc))
        raise
    except BaseException as exc:
        _finish(store, run_id, "failed", total, f"{type(exc).__name__}: {exc}")
        raise
    _finish(store, run_id, "succeeded", total, None)
    return total


def sync_stream(
    store: Store,
    adapter: Adapter,
    pipeline: Pipeline,
    stream: str,
    until: datetime,
    batch_size: int,
    progress: Progress | None = None,
    statistics: PlannerStatistics | None = None,
) -> BatchResult:
    """Pull one stream in batches, each committed with its cursor."""
    total = BatchResult()
    with store.session() as session:
        cursor = pipeline.load_cursor(session, adapter.name, stream)
    batch: list[SourceRecord] = []

    def flush() -> None:
        with store.session() as session:
            result = pipeline.ingest(
                session, adapter.name, batch, adapter.map, cursors={stream: batch[-1].cursor}
            )
        total.add(result)
        if progress:
            progress(stream, len(batch))
        if statistics is not None:
            statistics.after_batch(store, len(batch))
        batch.clear()
        collect_between_batches()

    for record in adapter.pull(stream, cursor, until):
        batch.append(record)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return total


def _finish(store: Store, run_id: int, outcome: str, counts: BatchResult, error: str | None) -> None:
    with store.session() as session:
        session.execute(
            update(SyncRun).where(SyncRun.id == run_id).values(
                finished_at=utcnow(), outcome=outcome, counts=counts.as_dict(), error=error)
        )
