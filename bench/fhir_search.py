"""Benchmark: what FHIR search semantics cost on the store, beside the canonical API's search.

Builds (once, cached under var/bench/, shared with bench/api_load.py) a store of
``--people`` synthetic people, then runs each search shape ``--rounds`` times in
this process, straight through :mod:`hub.record` (no HTTP, so the figure is the
store work a search costs): the page of people and, for FHIR, the Bundle's
``total`` (:func:`hub.record.count_people`). Prints CPU milliseconds per search
(process time; the cores are shared, so wall time is printed beside it) and the
load average. No targets are asserted.

    python bench/fhir_search.py [--people 20000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api_load import build_store, warm_page_cache  # noqa: E402
from hub.access.policy import Policy  # noqa: E402
from hub.access.rules import Caller  # noqa: E402
from hub.audit import AuditContext  # noqa: E402
from hub.record import Match, PersonQuery, count_people, search_people  # noqa: E402
from hub.settings import get_settings  # noqa: E402
from hub.store.db import Store  # noqa: E402
from tests.support.synthetic import FAMILY  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def shapes() -> dict[str, tuple[PersonQuery, bool]]:
    """Each search shape: the query and whether a total is counted (FHIR) or not (/api)."""
    nhs = Match("nhs_number", "eq", ("9990000018",))
    return {
        "/api family=": (PersonQuery(family=FAMILY[3]), False),
        "/fhir family= (+total)": (PersonQuery(family=FAMILY[3]), True),
        "/fhir family=A,B (OR, +total)": (PersonQuery(all_of=((Match("family", "prefix", (FAMILY[3],)),
                                                                 Match("family", "prefix", (FAMILY[5],))),)), True),
        "/fhir birthdate=ge1950&birthdate=lt1960 (+total)": (PersonQuery(all_of=(
            (Match("birth_date", "ge", (date(1950, 1, 1), date(1950, 12, 31))),),
            (Match("birth_date", "lt", (date(1960, 1, 1), date(1960, 12, 31))),))), True),
        "/api nhs_number= (merged-aware)": (PersonQuery(nhs_number="9990000018"), False),
        "/fhir identifier=<bare> (NHS or local, +total)": (PersonQuery(all_of=((nhs, Match(
            "identifier", "eq", ("9990000018",))),)), True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--database-url", default=None, help="Default: a SQLite file under var/bench/.")
    args = parser.parse_args()
    bench_dir = ROOT / "var" / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{bench_dir / f'api_load_{args.people}.db'}"
    build_store(url, args.people)
    if url.startswith("sqlite"):
        warm_page_cache(url)
    store = Store(url)
    policy = Policy.of(get_settings())
    caller = Caller("bench.clinician", "bench", "clinician", "ICT-1", "direct care")
    print(f"{args.people:,} people, {args.rounds} rounds each; load average {os.getloadavg()[0]:.1f}")
    print(f"{'search':<52} {'CPU ms':>8} {'wall ms p50':>12} {'found':>7} {'total':>7}")
    for name, (query, with_total) in shapes().items():
        cpu: list[float] = []
        wall: list[float] = []
        found = total = 0
        for _ in range(args.rounds):
            audit = AuditContext(method="GET", path="/bench", client_ip=None)
            c0, w0 = time.process_time(), time.perf_counter()
            with store.session() as session:
                page = search_people(session, policy, caller, query, audit, limit=20, with_updated=with_total)
                if with_total:
                    total = count_people(session, policy, caller, query)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            found = len(page.people)
        print(f"{name:<52} {1000 * statistics.mean(cpu):8.2f} {1000 * statistics.median(wall):12.2f} "
              f"{found:7d} {total if with_total else '-':>7}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    store.dispose()


if __name__ == "__main__":
    main()
