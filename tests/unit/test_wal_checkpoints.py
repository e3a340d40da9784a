"""The embedded store's write-ahead log: copied into the database file by a thread, then started over."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from hub.store.db import KeptConnection, Store, WalCheckpoints


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

    checkpoints = WalCheckpoints(store.engine, restart_pages=1)
    busy, logged, copied = checkpoints.checkpoint()
    assert busy == 0 and logged == copied > 0  # every frame copied into the database file
    _write(kept, 20)
    assert log.stat().st_size == grown  # the log started over from its beginning instead of growing
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM scratch")).scalar() == 60 * 50
    kept.close()
    store.dispose()
