"""Engines and sessions for the store: SQLite (WAL) by default, PostgreSQL in production."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import HubError
from hub.settings import get_settings

log = logging.getLogger("carehub.store")
T = TypeVar("T")
P = ParamSpec("P")

# The page size of a new SQLite store (a store keeps the size it was created with). SQLite's own 4 KiB:
# larger pages made the migration faster but the shared record slower (every page read from the file is
# that many more bytes); the figures are in bench/RESULTS.md (the seventh pass).
SQLITE_PAGE_SIZE = 4_096
SQLITE_CACHE_KIB = 131_072
SQLITE_WAL_CHECKPOINT_BYTES = 64 * 2**20
# Seconds between two checkpoints by WalCheckpoints (for writers whose commits do not checkpoint), and the
# log's size from which it starts the log over. Measured at saturation: restarting at 16 MiB served
# 2,590-2,796 record opens/s, at 64 MiB 2,240-2,267, never 2,007-2,897 with the log at 107-294 MiB.
SQLITE_CHECKPOINT_INTERVAL = 1.0
SQLITE_WAL_RESTART_BYTES = 16 * 2**20
# What read-only queries run on: a request's ORM session, or a bare connection where the ORM's per-session
# bookkeeping would cost more than the query (the hot read routes).
Reader = Session | Connection


def normalise_url(url: str) -> str:
    """Use psycopg 3 for a bare ``postgresql://`` URL."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys on."""
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
        if parsed.database and parsed.database != ":memory:":
            # A file connection is cheap to keep and costly to reopen (its pragmas run again): keep enough for
            # the API's reader threads, the audit writer and the routes ending transactions.
            kwargs.update(pool_size=20, max_overflow=20)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # Only a new file takes it (before anything is written, WAL mode included); an existing one keeps its own.
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Up to 128 MiB of pages per connection (allocated only as pages are read). The default
            # 2 MiB holds a small fraction of the indexes a migration inserts into, so every insert
            # re-read index pages from the file and throughput fell as the tables grew.
            cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cur.close()
            # Checkpoint the WAL into the database every 64 MiB rather than every 4 MiB: a migration
            # batch writes more than 4 MiB, so every commit was also copying pages (hot index pages
            # many times over) into the file. Readers and committed transactions are unaffected.
            pragma_pages(dbapi_conn, "wal_autocheckpoint", SQLITE_WAL_CHECKPOINT_BYTES)

        return engine
    kwargs["pool_pre_ping"] = True
    return create_engine(url, **kwargs)


def is_sqlite(engine: Engine) -> bool:
    """True when the store is an embedded SQLite file."""
    return engine.dialect.name == "sqlite"


class Store:
    """The hub's handle on its database: one engine and a session factory."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, echo=echo)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_store() -> Store:
    """The store the settings name (``CAREHUB_DATABASE_URL`` or ``database_url`` in config/hub.toml)."""
    settings = get_settings()
    return Store(settings.database_url, echo=settings.sql_echo)


class KeptConnection:
    """A connection one thread keeps between its transactions (the API's read threads, the audit writer).

    Checking a connection out of the pool and back (with the pool's rollback
    on return) for every short transaction cost more CPU than the transaction.
    The connection is dropped after any failure but the hub's own refusals
    (:class:`~hub.errors.HubError`), and a transaction whose connection the
    database dropped (a restart, an administrator ending the session) runs
    once more on a new connection: the callers' work is either read-only or
    keyed so that a second run cannot write twice.

    ``checkpoints=False`` (SQLite): this connection's commits never copy the
    write-ahead log into the database file; a :class:`WalCheckpoints` thread
    does it instead (the connection goes back to the pool as it came).
    """

    def __init__(self, engine: Engine, *, checkpoints: bool = True) -> None:
        self.engine = engine
        self._quiet = not checkpoints and is_sqlite(engine)
        self._connection: Connection | None = None

    def transaction(self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(connection, *args, **kwargs)`` in one transaction: committed when it returns."""
        return self._run(False, work, *args, **kwargs)

    def read(self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Read-only ``work(connection, *args, **kwargs)``, its transaction ended (rolled back) when it returns.

        No transaction object of SQLAlchemy's is made for it (beginning and
        committing one cost a tenth of a record open): work that runs
        statements through SQLAlchemy begins one as it always does, and
        :class:`PreparedStatement` work runs in the driver's own (PostgreSQL:
        one transaction from the first statement; SQLite: each SELECT reads
        the database as of its start, as it does inside SQLAlchemy's
        transactions, whose BEGIN the SQLite driver leaves to the first write).
        """
        return self._run(True, work, *args, **kwargs)

    def _run(self, read_only: bool, work: Callable[Concatenate[Connection, P], T], *args: P.args,
             **kwargs: P.kwargs) -> T:
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = self.engine.connect()
                if self._quiet:
                    pragma(self._connection, "wal_autocheckpoint", 0)
            connection = self._connection
            try:
                if read_only:
                    try:
                        return work(connection, *args, **kwargs)
                    finally:
                        _end_read(connection)
                with connection.begin():
                    return work(connection, *args, **kwargs)
            except HubError:
                raise
            except DBAPIError as exc:
                self.close()
                if not exc.connection_invalidated or attempt == 2:
                    raise
                log.warning("store connection lost (%s); running the transaction again on a new one",
                            type(exc.orig).__name__)
            except BaseException as exc:
                lost = self._lost(connection, exc)
                self.close()
                if not lost or attempt == 2:
                    raise
                log.warning("store connection lost (%s); running the work again on a new one", type(exc).__name__)
        raise AssertionError("unreachable")

    def _lost(self, connection: Connection, exc: BaseException) -> bool:
        """True when ``exc``, raised by the driver itself (work that runs statements on the driver's cursor, or
        ending a read), means the database has dropped the connection."""
        dialect = self.engine.dialect
        if not isinstance(exc, dialect.loaded_dbapi.Error):
            return False
        try:
            dbapi_connection = connection.connection.dbapi_connection
        except Exception:  # noqa: BLE001 - SQLAlchemy has already discarded it: not a driver's verdict
            return False
        return bool(dialect.is_disconnect(exc, dbapi_connection, None))

    def close(self) -> None:
        """Close the kept connection (a new one is opened by the next transaction)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # a broken connection is discarded by the pool
                if self._quiet:
                    pragma_pages(connection.connection, "wal_autocheckpoint", SQLITE_WAL_CHECKPOINT_BYTES)
                connection.close()


def _end_read(connection: Connection) -> None:
    """End whatever transaction read-only work left open: SQLAlchemy's, or the driver's own."""
    if connection.in_transaction():
        connection.rollback()
    else:
        connection.connection.dbapi_connection.rollback()  # type: ignore[union-attr]


def pragma_pages(dbapi_connection: Any, name: str, size: int) -> int:
    """Set a SQLite pragma counted in pages (``wal_autocheckpoint``) to ``size`` bytes of the database's own
    pages, on a DB-API connection (or SQLAlchemy's pool proxy of one); returns the pages (at least one)."""
    pages = max(1, size // _page_size(dbapi_connection))
    _run_pragma(dbapi_connection, f"PRAGMA {name}={pages}")
    return pages


def pragma(connection: Connection, name: str, value: int | None = None) -> None:
    """Set (or, without a value, run) a SQLite pragma on the driver's connection (outside SQLAlchemy's
    transaction bookkeeping)."""
    _run_pragma(connection.connection, f"PRAGMA {name}" if value is None else f"PRAGMA {name}={value}")


class WalCheckpoints:
    """SQLite: the write-ahead log copied into the database file, and started over, by a thread of its own.

    A commit that finds the log past ``wal_autocheckpoint`` pages copies what
    the log holds into the database file and waits for the file to reach the
    disk (the only fsync with ``synchronous=NORMAL``). Only a writer starting
    on a fully copied log starts the log over from its beginning, which under
    steady reads and writes hardly ever happens: the log stayed past the
    threshold and *every* commit checkpointed, with an fsync each. When that
    commit is the audit writer's, every request waiting on its rows waits too
    (saturation fell to half its rate for seconds on end, until a lucky pause).

    So the audit writer leaves checkpoints out of its commits
    (``KeptConnection(checkpoints=False)``) and this thread runs a passive
    checkpoint every ``interval`` seconds (it blocks neither readers nor
    writers). Once the log holds ``restart_bytes`` or more it runs a restart
    checkpoint instead: writers wait while it copies the little the passive
    ones left and readers move off the log, and the next writer starts the
    log over. That is one wait, a few milliseconds, per 16 MiB of log, instead
    of an fsync in every commit.
    """

    def __init__(self, engine: Engine, interval: float = SQLITE_CHECKPOINT_INTERVAL,
                 restart_bytes: int = SQLITE_WAL_RESTART_BYTES) -> None:
        self.engine = engine
        self.interval = interval
        self.restart_bytes = restart_bytes
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="carehub-wal-checkpoints", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Checkpoint once more and stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=30)

    def checkpoint(self) -> tuple[int, int, int]:
        """A passive checkpoint, then a restart one when the log has grown to ``restart_bytes``: (busy, frames in
        the log, frames copied to the database file) of the last."""
        connection = self.engine.raw_connection()
        try:
            outcome = _checkpoint(connection, "PASSIVE")
            if outcome[1] * _page_size(connection) >= self.restart_bytes:
                outcome = _checkpoint(connection, "RESTART")
        finally:
            connection.close()
        return outcome

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.interval)
            try:
                self.checkpoint()
            except Exception:  # the store unreachable for a moment: the next checkpoint tries again
                log.exception("WAL checkpoint failed")
            if stopping:
                return


def _run_pragma(dbapi_connection: Any, statement: str) -> Any:
    """Run a PRAGMA statement on a DB-API connection (or SQLAlchemy's pool proxy of one); its first row, if any."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
        return cursor.fetchone()
    finally:
        cursor.close()


def _page_size(dbapi_connection: Any) -> int:
    return int(_run_pragma(dbapi_connection, "PRAGMA page_size")[0])


def _checkpoint(connection: Any, mode: str) -> tuple[int, int, int]:
    busy, logged, copied = _run_pragma(connection, f"PRAGMA wal_checkpoint({mode})") or (0, 0, 0)
    return int(busy), int(logged), int(copied)
