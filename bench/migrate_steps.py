"""Benchmark: where the main process of a migration spends its CPU, step by step, per source row.

Generates the legacy ESCR (``--people``), syncs it into a fresh SQLite store (or ``--url``) the way
``bench/migrate.py`` does (read-ahead, batches of 20,000), and prints the sync's figures (rows/s,
this process's and the reader's CPU per source row, load average) and then the thread CPU and
wall time of each step of the pipeline (``Pipeline.ingest``'s steps, identity, each table's
insert, the batches' arrival from the reader, the collection between batches), per source row.
``_apply(total)`` is a whole batch with its commit (a read-ahead sync on SQLite commits every few
batches: ``commits``), so its CPU minus the steps inside it is mostly the commit. The steps are
timed by wrapping the pipeline's methods for this run only; a step the code no longer has is skipped.
``--profile FILE`` also writes a cProfile of the sync.

    python bench/migrate_steps.py [--people 30000] [--url postgresql+psycopg://...] [--profile FILE]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import functools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hub.identity.resolver as resolver_module  # noqa: E402
import hub.pipeline as pipeline_module  # noqa: E402
import hub.pipeline.write as write_module  # noqa: E402
import hub.store.writer as writer_module  # noqa: E402
import hub.sync as sync_module  # noqa: E402
from adapters.simulators.legacy_escr import generate  # noqa: E402
from adapters.sql import SqlAdapter  # noqa: E402
from hub.pipeline import Pipeline  # noqa: E402
from hub.settings import SourceSettings, config_dir  # noqa: E402
from hub.store.db import Store  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.survivorship import Survivorship  # noqa: E402
from hub.sync import sync_source  # noqa: E402

STEPS: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
PIPELINE_STEPS = ("records_of", "attach_existing", "map_records", "resolve_references", "validate", "enrich",
                  "resolve", "keep_raw", "quarantine", "write", "emit")
"""The stages and steps Pipeline.ingest calls (hub.pipeline), timed where it looks them up."""
IDENTITY_STEPS = ("resolve_batch", "record_batch", "_candidate_ids", "_candidate_table", "_encode")


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, adding its thread CPU and wall time to ``STEPS[name]``."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            step = STEPS[name]
            step[0] += time.thread_time() - cpu
            step[1] += time.perf_counter() - wall
    return wrapper


def wrap_method(cls: type, name: str, label: str) -> None:
    """Time ``cls.name`` (found on the class or a base) under ``label``."""
    for owner in cls.__mro__:
        raw = owner.__dict__.get(name)
        if raw is not None:
            if isinstance(raw, staticmethod):
                setattr(cls, name, staticmethod(timed(label, raw.__func__)))
            else:
                setattr(cls, name, timed(label, raw))
            return


def instrument() -> None:
    """Wrap the pipeline's steps for this run."""
    for name in PIPELINE_STEPS:
        if hasattr(pipeline_module, name):
            setattr(pipeline_module, name, timed(name, getattr(pipeline_module, name)))
    for name in IDENTITY_STEPS:
        wrap_method(resolver_module.PersonResolver, name, f"identity {name}")
    for module in (write_module, writer_module):  # every table's insert, by table
        bulk_insert = module.bulk_insert

        def insert(session: Any, entity: Any, *rows: Any, bulk_insert: Any = bulk_insert) -> None:
            timed(f"insert {entity.__tablename__}", bulk_insert)(session, entity, *rows)

        module.bulk_insert = insert  # type: ignore[assignment]
    write_module.insert_returning = timed("insert raw_records (returning)", write_module.insert_returning)
    write_module.write_person_index = timed("write_person_index", write_module.write_person_index)
    sync_module._apply = timed("_apply(total)", sync_module._apply)  # type: ignore[attr-defined]
    writer = getattr(sync_module, "_Writer", None)  # a read-ahead sync's batches, with their commits
    if writer is not None:
        wrap_method(writer, "apply", "_apply(total)")
        wrap_method(writer, "commit", "commits")
    sync_module.collect_between_batches = timed("gc between batches", sync_module.collect_between_batches)
    reader = getattr(sync_module, "_Reader", None)
    if reader is not None and hasattr(reader, "next_batch"):
        reader.next_batch = timed("batches from the reader", reader.next_batch)
    elif reader is not None:
        batches = reader.batches

        def timed_batches(self: Any) -> Iterator[Any]:
            source = batches(self)
            while True:
                cpu, wall = time.thread_time(), time.perf_counter()
                try:
                    item = next(source)
                except StopIteration:
                    return
                finally:
                    step = STEPS["batches from the reader"]
                    step[0] += time.thread_time() - cpu
                    step[1] += time.perf_counter() - wall
                yield item

        reader.batches = timed_batches


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=30_000)
    parser.add_argument("--url", help="a store URL instead of a fresh SQLite file (an empty database)")
    parser.add_argument("--profile", help="write a cProfile of the sync to this file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="carehub-steps-"))
    legacy_url = f"sqlite:///{work / 'legacy.db'}"
    generate(legacy_url, people=args.people)
    settings = SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                              options={"url": legacy_url}, batch_size=20_000)
    adapter = SqlAdapter("legacy_escr", settings)
    store = Store(args.url or f"sqlite:///{work / 'hub.db'}")
    upgrade(store.engine)
    pipeline = Pipeline(Survivorship.load(config_dir() / "survivorship.toml"))
    instrument()
    profiler = cProfile.Profile() if args.profile else None
    load = os.getloadavg()[0]
    cpu, wall, children = time.process_time(), time.perf_counter(), os.times()
    if profiler is not None:
        profiler.enable()
    result = sync_source(store, adapter, pipeline, batch_size=settings.batch_size, read_ahead=True)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    after = os.times()
    reader = after.children_user + after.children_system - children.children_user - children.children_system
    rows = result.received
    print(f"{args.people:,} people, {rows:,} source rows: {wall:.1f} s, {rows / wall:,.0f} rows/s; "
          f"this process {cpu / rows * 1e6:.0f} us CPU per row, the reader {reader / rows * 1e6:.0f}; "
          f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"{'step':<34} {'CPU s':>8} {'us/row':>7} {'wall s':>8}")
    for name, (step_cpu, step_wall) in sorted(STEPS.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:<34} {step_cpu:>8.2f} {step_cpu / rows * 1e6:>7.1f} {step_wall:>8.2f}")
    store.dispose()
    adapter.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
