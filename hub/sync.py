"""Running a sync: pull each stream of a source in batches through the pipeline.

Each batch is one transaction holding its raw records, canonical changes,
outbox events and the stream's cursor, so a sync killed at any moment resumes
where the last committed batch ended and reaches the state of an unbroken run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import update

from hub.contract import Adapter, SourceRecord
from hub.errors import HubError
from hub.pipeline import BatchResult, Pipeline
from hub.store.db import Store
from hub.store.tables import SyncRun, utcnow

Progress = Callable[[str, int], None]


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
    try:
        for spec in adapter.streams():
            total.add(sync_stream(store, adapter, pipeline, spec.name, started, batch_size, progress))
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
        batch.clear()

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
