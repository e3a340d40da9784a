"""Transitions benchmark: the due scan's time, and the children's system pulled end to end beside a bare HTTP floor.

    .venv/bin/python bench/transitions.py --people 100000

Seeds the children's case system simulator with ``--people`` young people aged 0-25 (about half aged
14-25), syncs it into a fresh SQLite store through the REST adapter and the pipeline (source rows/s), reads
the same simulator again with bare requests paging (the floor, rows/s), then times the due scan
(``hub.transitions.due.scan``) ``--scans`` times. Prints figures; asserts nothing. Targets: a scan under
2 s at 100,000 people on SQLite; the sync at least 40% of the floor.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import date

import requests

from adapters.rest import RestSource
from adapters.simulators.childrens_case import COLLECTIONS, ChildrensCaseSystem
from hub.pipeline import Pipeline
from hub.settings import SourceSettings, TransitionSettings
from hub.store.db import Store
from hub.store.migrate import upgrade
from hub.sync import sync_source
from hub.transitions.due import scan


def cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def floor(sim: ChildrensCaseSystem, page_size: int) -> tuple[int, float]:
    """Every collection read with bare requests and cursor paging: rows and seconds."""
    session = requests.Session()
    token = session.post(sim.token_url, data={"grant_type": "client_credentials"},
                         auth=(sim.client_id, sim.client_secret)).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    rows, started = 0, time.perf_counter()
    for collection in COLLECTIONS:
        url: str | None = f"{sim.base_url}/{collection}?page_size={page_size}"
        while url:
            body = session.get(url).json()
            rows += len(body["data"])
            url = body["links"]["next"]
    return rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--scans", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--in-process", action="store_true",
                        help="Read, map and write in one process (carehub sync reads ahead in a forked reader).")
    parser.add_argument("--scan-store", help="Only time the due scan over this store (a URL; e.g. an earlier run's).")
    args = parser.parse_args()
    if args.scan_store:
        store = Store(args.scan_store)
        time_scans(store, args.scans)
        store.dispose()
        return
    sim = ChildrensCaseSystem(require_auth=True).start()
    sim.seed(args.people)
    total = sum(sim.count(c) for c in COLLECTIONS)
    print(f"children's system: {args.people:,} people, {total:,} records; load average {os.getloadavg()[0]:.2f}")
    floor_cpu0 = cpu()
    bare_rows, bare_seconds = floor(sim, args.page_size)
    floor_cpu = (cpu() - floor_cpu0) / bare_rows
    print(f"bare HTTP paging floor: {bare_rows:,} rows in {bare_seconds:.1f} s = "
          f"{bare_rows / bare_seconds:,.0f} rows/s; CPU {floor_cpu * 1e6:.0f} us/row (client and simulator)")
    folder = tempfile.mkdtemp(prefix="carehub-bench-transitions-")
    store = Store(f"sqlite:///{folder}/hub.db")
    upgrade(store.engine)
    adapter = RestSource("childrens_case", SourceSettings(
        adapter="adapters.rest:RestSource", mapping="childrens_case.yaml", options={
            "base_url": sim.base_url, "auth": "oauth2", "token_url": sim.token_url, "client_id": sim.client_id,
            "client_secret": sim.client_secret, "paging": "cursor", "sorted": True, "page_size": args.page_size}))
    started, cpu0, child0 = time.perf_counter(), cpu(), cpu(resource.RUSAGE_CHILDREN)
    result = sync_source(store, adapter, Pipeline(), batch_size=5000, read_ahead=not args.in_process)
    seconds, used = time.perf_counter() - started, cpu() - cpu0
    reader = cpu(resource.RUSAGE_CHILDREN) - child0
    rate = result.received / seconds
    mode = "in process" if args.in_process else "read ahead (forked reader, as carehub sync)"
    print(f"sync end to end, {mode}: {result.received:,} rows in {seconds:.1f} s = {rate:,.0f} rows/s "
          f"({rate / (bare_rows / bare_seconds):.0%} of the floor; target >= 40%); "
          f"CPU {used / result.received * 1e6:.0f} us/row in this process (writer and simulator), "
          f"{reader / result.received * 1e6:.0f} us/row in the forked reader; "
          f"the floor's CPU is {floor_cpu / ((used + reader) / result.received):.0%} of the sync's; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"store: sqlite:///{folder}/hub.db")
    time_scans(store, args.scans)
    sim.stop()
    store.dispose()


def time_scans(store: Store, scans: int) -> None:
    """Run the due scan ``scans`` times; print the best and median, CPU and load."""
    settings = TransitionSettings()
    times, cpus = [], []
    for _ in range(scans):
        with store.session() as session:
            t0, c0 = time.perf_counter(), cpu()
            entries = scan(session, date.today(), settings)
            times.append(time.perf_counter() - t0)
            cpus.append(cpu() - c0)
    from sqlalchemy import func, select

    from hub.store.tables import PersonIndex
    with store.session() as session:
        people = session.scalar(select(func.count()).select_from(PersonIndex))
    print(f"due scan over {people:,} people: {len(entries):,} due, {sum(e.overdue for e in entries):,} overdue; "
          f"best {min(times):.3f} s, median {sorted(times)[len(times) // 2]:.3f} s (target < 2 s); "
          f"CPU best {min(cpus):.3f} s; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
