"""Benchmark: migrate a generated legacy ESCR of 100,000 people end to end.

Prints source rows per second through the whole pipeline as the shipped configuration
builds it (``config/hub.toml``: the gazetteer enricher on, the demo town's gazetteer loaded
and the people living at its addresses; read, keep raw, map, validate, enrich, identity,
upsert with provenance, outbox; ``--bare`` for the pipeline without enrichers) on SQLite and, when
PostgreSQL answers, on PostgreSQL — beside the floor of the same rows written by
a bare ``executemany`` into the same kind of store in the same run, the process CPU
per source row of this process and of the sync's reader process, and the load average
before and after the sync.

It then prints the store's own floor: every row the sync wrote (raw records,
quarantine, source links, entities, person index and identifiers, match links and
reviews, outbox events), written again by a bare ``executemany`` per table into a
fresh store with the hub's schema and indexes, in transactions of as many source rows
as the sync's. That is what the store alone costs for this migration, with no mapping,
validation or identity: the sync cannot go faster than it on one writer.

Target: >= 10,000 source rows/s on SQLite (a million-row legacy database in
under two minutes). Beside the verdict it prints the CPU a source row took, in this
process and in the reader, against what the target leaves on this machine: at 10,000
rows/s each core has 100 microseconds per row, and the one process that writes the
store must spend the store's floor out of its 100.

    python bench/migrate.py [--people 100000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test] [--bare]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.simulators.legacy_escr import gazetteer_homes, generate  # noqa: E402
from adapters.sql import SqlAdapter  # noqa: E402
from gazetteer.load import load_file  # noqa: E402
from gazetteer.simulator import generate_town, write_full  # noqa: E402
from hub.contract import StreamCursor  # noqa: E402
from hub.pipeline import Pipeline  # noqa: E402
from hub.registry import build_pipeline  # noqa: E402
from hub.settings import Settings, SourceSettings, config_dir  # noqa: E402
from hub.store.db import Store, make_engine, pragma_pages  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.survivorship import Survivorship  # noqa: E402
from hub.sync import COMMIT_BATCHES, SYNC_WAL_CHECKPOINT_BYTES, sync_source  # noqa: E402

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


# The tables a migration writes, in the order a batch writes them (hub.pipeline.Pipeline.ingest).
STORE_TABLES = ("raw_records", "quarantine", "source_links", "entities", "person_index", "person_identifiers",
                "match_links", "match_reviews", "outbox")


def store_floor(synced_url: str, fresh_url: str, transaction_rows: int) -> tuple[float, float, int]:
    """(seconds, CPU seconds, rows) writing every row the sync wrote into ``synced_url`` again into a fresh
    store at ``fresh_url`` by bare ``executemany``, in transactions of ``transaction_rows`` source rows.

    A row goes in the transaction of the raw record it came from (a person's index rows, identifiers and
    match rows with the person's entity; an entity, and its events, with its first source record), and
    entities and person index rows in the order of their events, as the sync wrote them.
    """
    source = create_engine(synced_url)
    raw = source.raw_connection()
    driver = raw.driver_connection
    if not isinstance(driver, sqlite3.Connection):
        from psycopg.types.string import TextLoader  # JSON read as text, written back as text

        for name in ("json", "jsonb"):
            driver.adapters.register_loader(name, TextLoader)  # type: ignore[union-attr]
    cursor = raw.cursor()
    tables: dict[str, tuple[list[str], Sequence[Any]]] = {}
    for table in STORE_TABLES:
        cursor.execute(f"SELECT * FROM {table}")
        tables[table] = ([d[0] for d in cursor.description], cursor.fetchall())

    raw_columns, raw_rows = tables["raw_records"]
    raw_ids = sorted(r[raw_columns.index("id")] for r in raw_rows)
    in_transaction = {raw_id: i // transaction_rows for i, raw_id in enumerate(raw_ids)}
    cursor.execute("SELECT entity_id, min(raw_record_id) FROM source_links GROUP BY entity_id")
    of_entity = {entity_id: in_transaction[raw_id] for entity_id, raw_id in cursor.fetchall()}
    cursor.execute("SELECT entity_id FROM outbox ORDER BY id")
    event_order: dict[str, int] = {}
    for i, (entity_id,) in enumerate(cursor.fetchall()):
        event_order.setdefault(entity_id, i)
    raw.close()
    source.dispose()
    keyed = {"raw_records": ("id", in_transaction), "quarantine": ("raw_record_id", in_transaction),
             "source_links": ("raw_record_id", in_transaction), "entities": ("id", of_entity),
             "person_index": ("person_id", of_entity), "person_identifiers": ("person_id", of_entity),
             "match_links": ("person_b", of_entity), "match_reviews": ("person_b", of_entity),
             "outbox": ("entity_id", of_entity)}
    transactions: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for table, (columns, rows) in tables.items():
        if table in ("entities", "person_index"):  # ids are uuid5: the order they were written in is the events'
            rows = sorted(rows, key=lambda r: event_order.get(r[0], 0))
        name, group = keyed[table]
        at = columns.index(name)
        for row in rows:
            transactions[(table, group.get(row[at], 0))].append(row)
    store = Store(fresh_url)
    upgrade(store.engine)
    store.dispose()
    engine = make_engine(fresh_url)  # the hub's own connection settings (SQLite's pragmas)
    raw = engine.raw_connection()
    cursor = raw.cursor()
    sqlite = isinstance(raw.driver_connection, sqlite3.Connection)
    mark = "?" if sqlite else "%s"
    statements = {table: f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
                  for table, (columns, _) in tables.items()}
    tables.clear()
    if sqlite:  # as the sync's connection (hub.sync._Writer)
        pragma_pages(raw, "wal_autocheckpoint", SYNC_WAL_CHECKPOINT_BYTES)
    start, cpu = time.perf_counter(), time.process_time()
    for number in range(max(in_transaction.values(), default=0) + 1):
        for table in STORE_TABLES:
            batch = transactions.get((table, number))
            if batch:
                cursor.executemany(statements[table], batch)
        raw.commit()
    if sqlite:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    raw.close()
    engine.dispose()
    return seconds, cpu, len(raw_ids)


def end_to_end(url: str, adapter: SqlAdapter, town: Path | None) -> tuple[float, int, float, float, float]:
    """(seconds, rows read, rows/s, this process's CPU s, the reader's CPU s) for a full sync
    into a fresh store at ``url`` (kept for :func:`store_floor`): with the pipeline of the shipped
    configuration and the ``town`` gazetteer loaded first (untimed), or without enrichers when None."""
    store = Store(url)
    upgrade(store.engine)
    if town is not None:
        load_file(store, town)
        pipeline = build_pipeline(Settings(database_url=url), store)
    else:
        pipeline = Pipeline(Survivorship.load(config_dir() / "survivorship.toml"))
    start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    result = sync_source(store, adapter, pipeline, batch_size=adapter.settings.batch_size, read_ahead=True)
    elapsed = time.perf_counter() - start
    cpu, children = time.process_time() - cpu, _children_cpu() - children
    store.dispose()
    return elapsed, result.received, result.received / elapsed, cpu, children


def cpu_budget(main_us: float, reader_us: float) -> str:
    """The CPU a source row took (this process and the reader) beside what the target leaves for one on
    this machine: at ``TARGET_SQLITE`` rows/s each core has ``1e6 / TARGET_SQLITE`` microseconds per row."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    budget = cores * 1e6 / TARGET_SQLITE
    return (f"CPU per source row: {main_us:.0f} + {reader_us:.0f} (reader) = {main_us + reader_us:.0f} us; "
            f"{TARGET_SQLITE:,} rows/s on {cores} core{'s' if cores > 1 else ''} leaves at most {budget:.0f} "
            f"({1e6 / TARGET_SQLITE:.0f} per core)")


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
    parser.add_argument("--bare", action="store_true", help="The pipeline without the shipped enrichers.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="carehub-bench-"))
    legacy_url = f"sqlite:///{work / 'legacy.db'}"
    t0 = time.perf_counter()
    town: Path | None = None
    homes: list[Any] = []
    if not args.bare:  # as `carehub demo` seeds it: the town's gazetteer first, people living at its homes
        town = write_full(generate_town(blpus=max(100, int(args.people * 0.9))), work / "town.csv")
        scratch = Store(f"sqlite:///{work / 'town.db'}")
        upgrade(scratch.engine)
        load_file(scratch, town)
        scratch.dispose()
        homes = gazetteer_homes(f"sqlite:///{work / 'town.db'}")
        print(f"gazetteer: {len(homes):,} homes (shipped configuration: enrichers "
              f"{', '.join(Settings().pipeline.enrichers) or 'none'})")
    summary = generate(legacy_url, people=args.people, addresses=homes)
    print(f"generated legacy ESCR: {args.people:,} people, {summary.total_rows:,} rows "
          f"in {time.perf_counter() - t0:.1f}s")
    settings = SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                              options={"url": legacy_url}, batch_size=20_000)  # as config/hub.toml
    adapter = SqlAdapter("legacy_escr", settings)
    rows = source_rows(adapter)
    print(f"source rows to migrate: {len(rows):,}")

    # (label, the sync's store, the store floor's store, source rows per transaction of the sync)
    sqlite_rows = settings.batch_size * COMMIT_BATCHES
    targets = [("SQLite", f"sqlite:///{work / 'hub.db'}", f"sqlite:///{work / 'floor.db'}", sqlite_rows)]
    admin = None
    if not args.no_pg:
        try:
            admin = create_engine(make_url(args.pg), isolation_level="AUTOCOMMIT")
            names = [f"carehub_bench_migrate_{uuid.uuid4().hex[:8]}" for _ in range(2)]
            with admin.connect() as conn:
                for name in names:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
            pg_url, floor_url = (make_url(args.pg).set(database=name).render_as_string(False) for name in names)
            targets.append(("PostgreSQL", pg_url, floor_url, settings.batch_size))
        except Exception as exc:  # the benchmark still reports SQLite without PostgreSQL
            print(f"PostgreSQL not used: {type(exc).__name__}")
            admin = None

    print(f"{'store':<11} {'floor rows/s':>13} {'end-to-end s':>13} {'rows/s':>9} {'of floor':>9} "
          f"{'main CPU us/row':>16} {'reader CPU us/row':>18}  load average")
    floors = []
    for label, url, floor_url, transaction_rows in targets:
        floor_rate = floor(url, rows)
        before = os.getloadavg()[0]
        seconds, read, rate, cpu, reader = end_to_end(url, adapter, town)
        print(f"{label:<11} {floor_rate:>13,.0f} {seconds:>13.1f} {rate:>9,.0f} {rate / floor_rate:>8.1%} "
              f"{cpu / read * 1e6:>16.0f} {reader / read * 1e6:>18.0f}  {before:.1f} -> {os.getloadavg()[0]:.1f}")
        if label == "SQLite":
            verdict = "meets" if rate >= TARGET_SQLITE else "misses"
            print(f"            target >= {TARGET_SQLITE:,} rows/s on SQLite: {verdict}")
            print(f"            {cpu_budget(cpu / read * 1e6, reader / read * 1e6)}")
        floor_seconds, floor_cpu, written = store_floor(url, floor_url, transaction_rows)
        floors.append((label, transaction_rows, written / floor_seconds, floor_cpu / written * 1e6, rate,
                       cpu / read * 1e6))
        if label == "SQLite":
            for path in work.glob("*.db*"):
                if path.name.startswith(("hub.db", "floor.db")):
                    path.unlink()
    print(f"\nthe store's own floor: every row the sync wrote, written again by bare executemany into the hub's "
          f"schema\n{'store':<11} {'rows/transaction':>17} {'rows/s':>9} {'CPU us/row':>11} {'sync of it':>11} "
          f"{'sync CPU of it':>15}")
    for label, transaction_rows, floor_rate, floor_us, rate, cpu_us in floors:
        print(f"{label:<11} {transaction_rows:>17,} {floor_rate:>9,.0f} {floor_us:>11.0f} {rate / floor_rate:>10.0%} "
              f"{floor_us / cpu_us:>15.0%}")
        if label == "SQLite":
            print(f"            one writer: at {TARGET_SQLITE:,} rows/s its core has {1e6 / TARGET_SQLITE:.0f} us per "
                  f"row, and the store's floor alone takes {floor_us:.0f} of them")
    adapter.close()
    shutil.rmtree(work, ignore_errors=True)  # the legacy and hub files of a 100k run are over 1 GB
    if admin is not None:
        with admin.connect() as conn:
            for label, url, floor_url, _ in targets:
                if label == "PostgreSQL":
                    for database in (url, floor_url):
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(database).database}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
