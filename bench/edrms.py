"""EDRMS benchmark: crawl 100,000 documents' metadata from the CMIS simulator and link them to people.

Prints, from the same run on the same simulator: the floor (bare HTTP paging of the browser binding:
POST the crawl's query page by page, decode the JSON, nothing else) in documents/s; the pull end to end
(page by page: query, identifiers looked up, documents and links stored, retention computed, canonical
DocumentLinks written through the core's writer, the cursor saved with them) in documents/s and as a
share of the floor; the load average; and the hub's CPU per document (the simulator runs in a process
of its own, so its CPU is not counted). Targets: >= 1,000 documents/s and >= 50% of the floor.

    python bench/edrms.py                                  # 100,000 documents about 5,000 people, SQLite
    python bench/edrms.py --documents 20000 --people 2000
    python bench/edrms.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import requests  # noqa: E402

from adapters.simulators.legacy_escr import generate  # noqa: E402
from edrms.cmis import cmis_instant, connect  # noqa: E402
from edrms.demo import demo_subjects  # noqa: E402
from edrms.pull import DocumentPull  # noqa: E402
from edrms.retention import Schedule  # noqa: E402
from edrms.simulator import CmisSimulator, Repository, Subject, synthetic_documents  # noqa: E402
from hub.registry import build_pipeline, load_adapter  # noqa: E402
from hub.settings import EdrmsSettings, Settings, SourceSettings  # noqa: E402
from hub.store.db import Store  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.sync import sync_source  # noqa: E402

STATEMENT = ("SELECT * FROM cmis:document WHERE cmis:lastModificationDate >= TIMESTAMP '1970-01-01T00:00:00.000Z' "
             "ORDER BY cmis:lastModificationDate ASC, cmis:objectId ASC")


def _serve(subjects: list[Subject], documents: int, page: int, ready: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    repository = Repository(page_limit=page, changes=False)
    synthetic_documents(repository, subjects, documents, seed=42)
    simulator = CmisSimulator(repository)
    ready.put(simulator.browser_url)
    simulator.serve_forever()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def floor(url: str, page: int) -> tuple[int, float]:
    """Bare HTTP paging of the crawl's query, paged as the pull pages it (from the last modification time
    seen, skipping the documents already read at that time): documents read and seconds taken."""
    session = requests.Session()
    repo = session.get(url, timeout=60).json()["-default-"]["repositoryUrl"]
    read, since_ms, ties = 0, None, 0
    started = time.perf_counter()
    while True:
        since = ("1970-01-01T00:00:00.000Z" if since_ms is None
                 else cmis_instant(datetime.fromtimestamp(since_ms / 1000, UTC)))
        query = STATEMENT.replace("1970-01-01T00:00:00.000Z", since)
        body = session.post(repo, data={"cmisaction": "query", "q": query, "succinct": "true",
                                        "maxItems": str(page), "skipCount": str(ties)}, timeout=120).json()
        results = body["results"]
        read += len(results)
        for obj in results:
            stamp = obj["succinctProperties"]["cmis:lastModificationDate"]
            ties = ties + 1 if stamp == since_ms else 1
            since_ms = stamp
        if not body["hasMoreItems"] or not results:
            break
    return read, time.perf_counter() - started


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description="EDRMS crawl-and-link benchmark.")
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="Store to use (default: a new SQLite file).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/hub.db"
        settings = Settings(database_url=url, data_dir=Path(tmp), sources={"legacy_escr": SourceSettings(
            adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml", batch_size=5000,
            options={"url": f"sqlite:///{tmp}/legacy.db", "timezone": "Europe/London", "lag_seconds": 0})})
        store = Store(url)
        upgrade(store.engine)
        started = time.perf_counter()
        generate(f"sqlite:///{tmp}/legacy.db", people=args.people)
        adapter = load_adapter(settings, "legacy_escr")
        sync_source(store, adapter, build_pipeline(settings, store), batch_size=5000)
        subjects = demo_subjects(store, settings, limit=args.people)
        print(f"people: {len(subjects):,} synced from a synthetic legacy ESCR in {time.perf_counter() - started:.1f} s "
              f"({store.engine.dialect.name})")

        ready: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        server = multiprocessing.get_context("fork").Process(
            target=_serve, args=(subjects, args.documents, args.page_size, ready), daemon=True)
        started = time.perf_counter()
        server.start()
        service = ready.get(timeout=600)
        print(f"simulator: {args.documents:,} documents, pages of {args.page_size:,}, ready in "
              f"{time.perf_counter() - started:.1f} s at {service}")
        try:
            read, seconds = floor(service, args.page_size)
            floor_rate = read / seconds
            print(f"floor (bare HTTP paging, JSON decoded): {read:,} documents in {seconds:.1f} s = "
                  f"{floor_rate:,.0f} documents/s")
            edrms = EdrmsSettings(enabled=True, service_url=service, page_size=args.page_size,
                                  use_change_log=False, client_id_system="legacy_escr")
            repository = connect(service)
            cpu, clock = _cpu(), time.perf_counter()
            result = DocumentPull(store, repository, edrms, Schedule.from_settings(settings)).run()
            seconds, cpu = time.perf_counter() - clock, _cpu() - cpu
            repository.close()
        finally:
            server.terminate()
            server.join(timeout=10)
        rate = result.read / seconds
        load = os.getloadavg()
        print(f"pull end to end: {result.read:,} documents in {seconds:.1f} s = {rate:,.0f} documents/s "
              f"({rate / floor_rate:.0%} of the floor); {result.linked:,} linked, {result.orphans:,} orphans, "
              f"{result.events:,} change events, {result.pages} pages")
        print(f"hub CPU: {cpu:.1f} s = {cpu / max(result.read, 1) * 1e6:,.0f} us per document; "
              f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
        print(f"targets: >= 1,000 documents/s: {'ok' if rate >= 1000 else 'MISSED'}; "
              f">= 50% of the floor: {'ok' if rate >= 0.5 * floor_rate else 'MISSED'}")
        store.dispose()


if __name__ == "__main__":
    main()
