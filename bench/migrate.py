"""Benchmark: migrate a generated legacy ESCR of 100,000 people end to end.

Prints source rows per second through the whole pipeline (read, keep raw, map,
validate, identity, upsert with provenance, outbox) on SQLite and, when
PostgreSQL answers, on PostgreSQL — beside the floor of the same rows written by
a bare ``executemany`` into the same kind of store in the same run, the process CPU
per source row of this process and of the sync's reader process, and the load average
before and after the sync.

Target: >= 10,000 source rows/s on SQLite (a million-row legacy database in
under two minutes).

    python bench/migrate.py [--people 100000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.simulators.legacy_escr import generate  # noqa: E402
from adapters.sql import SqlAdapter  # noqa: E402
from hub.contract import StreamCursor  # noqa: E402
from hub.pipeline import Pipeline  # noqa: E402
from hub.settings import SourceSettings, config_dir  # noqa: E402
from hub.store.db import Store  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.survivorship import Survivorship  # noqa: E402
from hub.sync import sync_source  # noqa: E402

TARGET_SQLITE = 10_000


def source_rows(adapter: SqlAdapter) -> list[tuple[str, str, bytes]]:
    """Every source row the sync will read, as (stream, key, JSON payload)."""
    rows = []
    until = datetime.now(UTC)
    for spec in adapter.streams():
        for record in adapter.pull(spec.name, StreamCursor(), until):
            rows.append((record.stream, record.source_id, orjson.dumps(record.payload)))
    return rows


def floor(url: str, rows: list[tuple[str, str, bytes]]) -> float:
    """Rows/s for a bare executemany of the same rows into a fresh table of the same store."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_floor"))
        conn.execute(text("CREATE TABLE bench_floor (stream VARCHAR(64), source_id VARCHAR(128), payload TEXT)"))
    params = [{"s": s, "k": k, "p": p.decode()} for s, k, p in rows]
    start = time.perf_counter()
    with engine.begin() as conn:
        for i in range(0, len(params), 2000):
            conn.execute(text("INSERT INTO bench_floor VALUES (:s, :k, :p)"), params[i:i + 2000])
    elapsed = time.perf_counter() - start
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_floor"))
    engine.dispose()
    return len(rows) / elapsed


def end_to_end(url: str, adapter: SqlAdapter) -> tuple[float, int, float, float, float]:
    """(seconds, rows read, rows/s, this process's CPU s, the reader's CPU s) for a full sync
    into a fresh store at ``url``."""
    store = Store(url)
    upgrade(store.engine)
    pipeline = Pipeline(Survivorship.load(config_dir() / "survivorship.toml"))
    start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    result = sync_source(store, adapter, pipeline, batch_size=adapter.settings.batch_size, read_ahead=True)
    elapsed = time.perf_counter() - start
    cpu, children = time.process_time() - cpu, _children_cpu() - children
    store.dispose()
    return elapsed, result.received, result.received / elapsed, cpu, children


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (the sync's reader) so far."""
    times = os.times()
    return times.children_user + times.children_system


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--pg", default=os.environ.get("CAREHUB_TEST_DATABASE_URL",
                                                        "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="carehub-bench-"))
    legacy_url = f"sqlite:///{work / 'legacy.db'}"
    t0 = time.perf_counter()
    summary = generate(legacy_url, people=args.people)
    print(f"generated legacy ESCR: {args.people:,} people, {summary.total_rows:,} rows "
          f"in {time.perf_counter() - t0:.1f}s")
    settings = SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                              options={"url": legacy_url}, batch_size=20_000)  # as config/hub.toml
    adapter = SqlAdapter("legacy_escr", settings)
    rows = source_rows(adapter)
    print(f"source rows to migrate: {len(rows):,}")

    targets = [("SQLite", f"sqlite:///{work / 'hub.db'}")]
    admin = None
    if not args.no_pg:
        try:
            admin = create_engine(make_url(args.pg), isolation_level="AUTOCOMMIT")
            name = f"carehub_bench_migrate_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            targets.append(("PostgreSQL", make_url(args.pg).set(database=name).render_as_string(False)))
        except Exception as exc:  # the benchmark still reports SQLite without PostgreSQL
            print(f"PostgreSQL not used: {type(exc).__name__}")
            admin = None

    print(f"{'store':<11} {'floor rows/s':>13} {'end-to-end s':>13} {'rows/s':>9} {'of floor':>9} "
          f"{'main CPU us/row':>16} {'reader CPU us/row':>18}  load average")
    for label, url in targets:
        floor_rate = floor(url, rows)
        before = os.getloadavg()[0]
        seconds, read, rate, cpu, reader = end_to_end(url, adapter)
        print(f"{label:<11} {floor_rate:>13,.0f} {seconds:>13.1f} {rate:>9,.0f} {rate / floor_rate:>8.1%} "
              f"{cpu / read * 1e6:>16.0f} {reader / read * 1e6:>18.0f}  {before:.1f} -> {os.getloadavg()[0]:.1f}")
        if label == "SQLite":
            verdict = "meets" if rate >= TARGET_SQLITE else "misses"
            print(f"            target >= {TARGET_SQLITE:,} rows/s on SQLite: {verdict}")
    adapter.close()
    shutil.rmtree(work, ignore_errors=True)  # the legacy and hub files of a 100k run are over 1 GB
    if admin is not None:
        with admin.connect() as conn:
            for label, url in targets:
                if label == "PostgreSQL":
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
