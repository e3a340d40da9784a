"""Engines and sessions for the store: SQLite (WAL) by default, PostgreSQL in production."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_CACHE_KIB = 131_072
SQLITE_WAL_CHECKPOINT_PAGES = 16_384
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
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Up to 128 MiB of pages per connection (allocated only as pages are read). The default
            # 2 MiB holds a small fraction of the indexes a migration inserts into, so every insert
            # re-read index pages from the file and throughput fell as the tables grew.
            cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            # Checkpoint the WAL into the database every 64 MiB rather than every 4 MiB: a migration
            # batch writes more than 4 MiB, so every commit was also copying pages (hot index pages
            # many times over) into the file. Readers and committed transactions are unaffected.
            cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_CHECKPOINT_PAGES}")
            cur.close()

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
