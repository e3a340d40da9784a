"""The embedded store's write-ahead log: copied into the database file by a thread, then started over."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from hub.store.db import (
    SQLITE_PAGE_SIZE,
    SQLITE_WAL_CHECKPOINT_BYTES,
    SQLITE_WAL_RESTART_BYTES,
    KeptConnection,
    Store,
    WalCheckpoints,
)


def _write(kept: KeptConnection, commits: int) -> None:
    for _ in range(commits):
        kept.transaction(lambda c: c.execute(text("INSERT INTO scratch (v) VALUES (:v)"),
                                             [{"v": "x" * 500} for _ in range(50)]))


def test_the_checkpoint_thread_copies_the_log_and_the_log_starts_over(tmp_path: Path) -> None:
    database = tmp_path / "hub.db"
    log = Path(f"{database}-wal")
    store = Store(f"sqlite:///{database}")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch (id INTEGER PRIMARY KEY, v TEXT)")
    kept = KeptConnection(store.engine, checkpoints=False)
    _write(kept, 20)
    first = log.stat().st_size
    _write(kept, 20)
    grown = log.stat().st_size
    assert grown > first * 1.5  # nothing copied the log: it only grows

    checkpoints = WalCheckpoints(store.engine, restart_bytes=1)
    busy, logged, copied = checkpoints.checkpoint()
    assert busy == 0 and logged == copied > 0  # every frame copied into the database file
    _write(kept, 20)
    assert log.stat().st_size == grown  # the log started over from its beginning instead of growing
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM scratch")).scalar() == 60 * 50
    kept.close()
    store.dispose()


def _pragmas(store: Store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        return (conn.exec_driver_sql("PRAGMA page_size").scalar_one(),
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def test_a_new_store_takes_the_hubs_page_size_and_its_log_thresholds_are_bytes(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'new.db'}")
    assert _pragmas(store) == (SQLITE_PAGE_SIZE, SQLITE_WAL_CHECKPOINT_BYTES // SQLITE_PAGE_SIZE)
    store.dispose()


def test_an_existing_store_keeps_its_page_size_and_checkpoints_at_the_same_bytes(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    made = sqlite3.connect(database)  # as a store created with another page size (or before the hub chose its own)
    made.execute("PRAGMA page_size=8192")
    made.execute("PRAGMA journal_mode=WAL")
    made.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY, v TEXT)")
    made.close()
    store = Store(f"sqlite:///{database}")
    assert _pragmas(store) == (8192, SQLITE_WAL_CHECKPOINT_BYTES // 8192)
    kept = KeptConnection(store.engine, checkpoints=False)
    _write(kept, 20)
    kept.close()  # gives its connection back with the store's threshold, counted in this file's pages
    assert _pragmas(store) == (8192, SQLITE_WAL_CHECKPOINT_BYTES // 8192)
    # 60 kB of rows, far from the restart's 16 MiB: a passive checkpoint only
    busy, logged, copied = WalCheckpoints(store.engine).checkpoint()
    assert busy == 0 and 0 < logged * 8192 < SQLITE_WAL_RESTART_BYTES
    store.dispose()
