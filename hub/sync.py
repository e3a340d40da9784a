"""Running a sync: pull each stream of a source in batches through the pipeline.

Each batch is written in one transaction with its raw records, canonical changes,
outbox events and the stream's cursor, so a sync killed at any moment resumes
where the last committed batch ended and reaches the state of an unbroken run.
A read-ahead sync on SQLite commits up to ``COMMIT_BATCHES`` batches together
(see ``_Writer``); every other sync commits each batch.

With ``read_ahead`` (``carehub sync`` and the migration benchmark), an adapter that
can run in a forked process (``can_read_ahead``) is pulled, serialised, hashed and
mapped there (``hub.pipeline.prepare``: the map stage), a batch ahead of the store,
while this process writes the batch before: the two halves of a migration run on two
cores. The batches, their order, their cursors and every record's outcome are the same as
read in process; only the mapping of a record the store already holds unchanged is done,
and thrown away.

A sync also has identity keep the active persons' blocking keys in memory from its
second batch on (``PersonResolver.remembering``, :mod:`hub.identity.blocks`), and the
pipeline answer references from the links its earlier batches read or wrote
(``Pipeline.remembering``), both checked against the outbox before each batch.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from hub.contract import Adapter, SourceRecord, StreamCursor
from hub.errors import HubError
from hub.pipeline import BatchResult, Pipeline, PreparedRecord, prepare, prepared_rows
from hub.runtime import (
    INHERITING,
    batch_friendly_gc,
    collect_between_batches,
    collect_now,
    collect_only_between_batches,
)
from hub.store.db import SQLITE_WAL_CHECKPOINT_BYTES, Store, is_sqlite, pragma, pragma_pages
from hub.store.tables import SyncRun, utcnow

Progress = Callable[[str, int], None]

# A batch keeps thousands of records, documents and models alive until it commits, so the
# collector's default thresholds promote them and then run full collections over the whole
# heap again and again: a sync tunes the collector (hub.runtime.batch_friendly_gc) and runs
# a full collection between batches (hub.runtime.collect_between_batches).

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
    read_ahead: bool = False,
) -> BatchResult:
    """Pull every stream of ``adapter`` after its cursor and apply it; returns the counts.

    ``read_ahead`` reads and maps in a forked process when the adapter can (see the module).
    """
    started = utcnow()
    with store.session() as session:
        run = SyncRun(source=adapter.name, started_at=started, outcome="running", counts={})
        session.add(run)
        session.flush()
        run_id = run.id
    total = BatchResult()
    statistics = PlannerStatistics(store)
    try:
        with (batch_friendly_gc(), pipeline.remembering(),
              pipeline.resolver.remembering()):  # identity's keys in memory (hub.identity.blocks)
            if read_ahead and INHERITING is not None and adapter.can_read_ahead():
                total.add(_sync_read_ahead(store, adapter, pipeline, started, batch_size, progress, statistics))
            else:
                for spec in adapter.streams():
                    total.add_stream(spec.name, sync_stream(store, adapter, pipeline, spec.name, started, batch_size,
                                                            progress, statistics))
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
    for record in adapter.pull(stream, cursor, until):
        batch.append(record)
        if len(batch) >= batch_size:
            total.add(_apply(store, adapter, pipeline, stream, batch, progress, statistics))
            batch = []
            collect_between_batches()
    if batch:
        total.add(_apply(store, adapter, pipeline, stream, batch, progress, statistics))
        del batch
        collect_between_batches()
    return total


def _apply(
    store: Store,
    adapter: Adapter,
    pipeline: Pipeline,
    stream: str,
    batch: Sequence[SourceRecord | PreparedRecord],
    progress: Progress | None,
    statistics: PlannerStatistics | None,
) -> BatchResult:
    """Ingest one batch and commit it with its stream's cursor."""
    with store.session() as session:
        result = pipeline.ingest(session, adapter.name, batch, adapter.map, cursors={stream: batch[-1].cursor})
    if progress:
        progress(stream, len(batch))
    if statistics is not None:
        statistics.after_batch(store, len(batch))
    return result


# -- read-ahead ---------------------------------------------------------------------------------

def _sync_read_ahead(
    store: Store,
    adapter: Adapter,
    pipeline: Pipeline,
    until: datetime,
    batch_size: int,
    progress: Progress | None,
    statistics: PlannerStatistics,
) -> BatchResult:
    """Every stream, read and mapped by a forked reader, applied here batch by batch."""
    plan: list[tuple[str, StreamCursor]] = []
    with store.session() as session:  # only a stream's own batches move its cursor
        for spec in adapter.streams():
            plan.append((spec.name, pipeline.load_cursor(session, adapter.name, spec.name)))
    total = BatchResult()
    with (_Reader(adapter, plan, until, batch_size) as reader,
          _Writer(store, statistics, progress) as writer):
        while (received := _next_batch(reader, writer)) is not None:
            stream, batch = received
            del received
            total.add_stream(stream, writer.apply(adapter, pipeline, stream, batch))
            del batch  # before the collection: it would walk (and freeze) the whole batch
            collect_between_batches()
    return total


def _next_batch(reader: _Reader, writer: _Writer) -> tuple[str, list[PreparedRecord]] | None:
    """The reader's next batch; when the reader fails, the batches applied before it are committed first
    (as they would have been one by one) and its error raised."""
    try:
        return reader.next_batch()
    except BaseException:
        writer.commit()
        raise


# SQLite, a read-ahead sync: a transaction holds COMMIT_BATCHES batches, or fewer once it has been open
# COMMIT_SECONDS. Ids are uuid5 of source keys, so every batch dirties pages all over the indexes and
# every commit writes most of them to the log again, and checkpoints them: fewer commits, less of both
# (figures in bench/RESULTS.md, the sixth pass). The seconds bound how long other writers wait for the
# database (busy_timeout is 30 s).
COMMIT_BATCHES = 3
COMMIT_SECONDS = 10.0
# ... and the sync's commits checkpoint only once the log reaches 1 GiB, with one passive checkpoint when
# the sync ends: a migration's log reached 64 MiB at nearly every commit.
SYNC_WAL_CHECKPOINT_BYTES = 2**30


class _Writer:
    """This process's side of a read-ahead sync: applies each batch, commits the batches it holds.

    Each batch saves its stream's cursor in the transaction that holds it, so a cursor still moves
    only with its data: a sync killed before a commit loses the batches since the last one, and the
    next sync reads them again. PostgreSQL commits every batch (its planner statistics are taken
    between batches, and its commits cost little); SQLite holds several (see ``COMMIT_BATCHES``) and
    checkpoints less often, on one connection kept for the sync.
    """

    def __init__(self, store: Store, statistics: PlannerStatistics, progress: Progress | None) -> None:
        self.store = store
        self.statistics = statistics
        self.progress = progress
        self.sqlite = is_sqlite(store.engine)
        self.connection = store.engine.connect()
        self.session: Session | None = None
        self.opened = 0.0
        self.pending: list[tuple[str, int]] = []  # the batches of the open transaction: (stream, rows)
        if self.sqlite:
            pragma_pages(self.connection.connection, "wal_autocheckpoint", SYNC_WAL_CHECKPOINT_BYTES)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        try:
            if kind is None:
                self.commit()
        finally:
            if self.session is not None:
                self.session.close()  # rolls back what was not committed
            if self.sqlite:
                with contextlib.suppress(Exception):  # a broken connection is discarded by the pool
                    pragma_pages(self.connection.connection, "wal_autocheckpoint", SQLITE_WAL_CHECKPOINT_BYTES)
                    if kind is None:
                        pragma(self.connection, "wal_checkpoint(PASSIVE)")
            self.connection.close()

    def apply(self, adapter: Adapter, pipeline: Pipeline, stream: str, batch: Sequence[PreparedRecord],
              ) -> BatchResult:
        """Ingest one batch with its stream's cursor; commit when the transaction holds enough."""
        if self.session is None:
            self.session = Session(self.connection, expire_on_commit=False)
            self.opened = time.monotonic()
        result = pipeline.ingest(self.session, adapter.name, batch, adapter.map, cursors={stream: batch[-1].cursor})
        self.pending.append((stream, len(batch)))
        if (not self.sqlite or len(self.pending) >= COMMIT_BATCHES
                or time.monotonic() - self.opened >= COMMIT_SECONDS):
            self.commit()
        return result

    def commit(self) -> None:
        """Commit the open transaction; report its batches (progress, planner statistics)."""
        if self.session is None:
            return
        self.session.commit()
        self.session.close()
        self.session = None
        pending, self.pending = self.pending, []
        for stream, rows in pending:
            if self.progress:
                self.progress(stream, rows)
            self.statistics.after_batch(self.store, rows)


class _Reader:
    """The forked reader: pulls the planned streams, prepares each record, sends batches down a pipe.

    The pipe holds about one batch, so the reader works at most a batch ahead of the store.
    It dies with this process (a SIGKILL of a sync leaves no reader behind) and this process
    stops it when the sync ends early.
    """

    def __init__(self, adapter: Adapter, plan: list[tuple[str, StreamCursor]], until: datetime,
                 batch_size: int) -> None:
        assert INHERITING is not None  # sync_source reads ahead only where the platform forks
        self._incoming, outgoing = INHERITING.Pipe(duplex=False)
        self._process = INHERITING.Process(
            target=_read_ahead,
            args=(adapter, plan, until, batch_size, outgoing, self._incoming, os.getpid()),
            name=f"carehub-reader-{adapter.name}", daemon=True,
        )
        self._process.start()
        outgoing.close()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._incoming.close()
        if self._process.is_alive():
            self._process.kill()
        self._process.join()

    def next_batch(self) -> tuple[str, list[PreparedRecord]] | None:
        """The next (stream, batch) in read order; None once the reader has read every planned stream.

        Not a generator, so that nothing here keeps a batch alive after the caller is done with it.
        """
        try:
            kind, stream, body = pickle.loads(self._incoming.recv_bytes())
        except EOFError:
            self._process.join(timeout=5)
            raise HubError(f"the source reader stopped unexpectedly (exit code {self._process.exitcode})")\
                from None
        if kind == "done":
            return None
        if kind == "error":
            raise body
        return stream, prepared_rows(body)


def _read_ahead(adapter: Adapter, plan: list[tuple[str, StreamCursor]], until: datetime, batch_size: int,
                outgoing: Any, incoming: Any, parent: int) -> None:
    """The reader process's body."""
    incoming.close()  # the parent's end: when the parent dies, a send here fails at once
    _die_with(parent)
    adapter.after_fork()
    collect_only_between_batches()

    def send(message: tuple[Any, ...]) -> None:
        outgoing.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    try:
        for stream, cursor in plan:
            batch: list[tuple[Any, ...]] = []
            for record in adapter.pull(stream, cursor, until):
                batch.append(tuple(prepare(record, adapter.map)))
                if len(batch) >= batch_size:
                    send(("batch", stream, batch))
                    batch = []
                    collect_now()
            if batch:
                send(("batch", stream, batch))
        send(("done", None, None))
    except (BrokenPipeError, ConnectionResetError):  # the sync has ended: nobody to read for
        return
    except BaseException as exc:  # noqa: BLE001 - every failure is the sync's, raised there
        try:
            send(("error", None, exc))
        except Exception:  # noqa: BLE001 - an exception that does not pickle still fails the sync
            with contextlib.suppress(OSError):
                send(("error", None, HubError(f"{type(exc).__name__}: {exc}")))


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when the parent dies (Linux); the closed pipe covers the rest."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(0)


def _finish(store: Store, run_id: int, outcome: str, counts: BatchResult, error: str | None) -> None:
    with store.session() as session:
        session.execute(
            update(SyncRun).where(SyncRun.id == run_id).values(
                finished_at=utcnow(), outcome=outcome, counts=counts.as_dict(), error=error)
        )
