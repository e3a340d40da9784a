"""Benchmark: what the one access decision costs on the busiest reads, in CPU per call, in-process.

Builds a small store (``--people`` synthetic people through the real pipeline, SQLite under a temporary
folder, or ``--database-url``), then, on one connection, times with the process's CPU clock:

* a record open (``GET /api/persons/{id}/record``'s work: the decision, the record, its JSON) for every person,
  as a clinician (no caseload rule) and as a social worker (caseload rule, most people refused);
* a search page by family name (the decision for each hit, the page refilled past hidden people).

Each is repeated ``--rounds`` times; it prints the best and the median round per call, and the load average
(the cores are shared: compare figures from the same run, or runs at the same load). No assertion on time.

    python bench/access_decision.py [--people 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from sqlalchemy import Connection, select  # noqa: E402

from hub.access.policy import Policy  # noqa: E402
from hub.access.rules import Caller  # noqa: E402
from hub.api.persons import record_json  # noqa: E402
from hub.audit import AuditContext  # noqa: E402
from hub.errors import HubError  # noqa: E402
from hub.record import PersonQuery, search_people  # noqa: E402
from hub.settings import get_settings  # noqa: E402
from hub.store.db import Store  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.tables import Entity  # noqa: E402
from tests.support.synthetic import FAMILY, Dataset, add_named, add_random  # noqa: E402


def rounds(work: Callable[[], int], count: int) -> tuple[float, float]:
    """Best and median CPU microseconds per call over ``count`` rounds of ``work`` (which returns its calls)."""
    per_call = []
    for _ in range(count):
        start = time.process_time()
        calls = work()
        per_call.append((time.process_time() - start) / calls * 1e6)
    return min(per_call), statistics.median(per_call)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="carehub-access-bench-")
    store = Store(args.database_url or f"sqlite:///{folder}/bench.db")
    upgrade(store.engine)
    data = Dataset()
    add_named(data)
    add_random(data, args.people)
    with store.session() as session:
        data.load(session)
    with store.session() as session:
        ids = list(session.scalars(select(Entity.id).where(Entity.entity_type == "Person")))
    policy = Policy.of(get_settings())
    clinician = Caller("bench.dr", "bench", "clinician", "ICT-1", "direct_care")
    worker = Caller("bench.sw", "bench", "social_worker", "CIN-N", "direct_care")

    with store.engine.connect() as conn:
        def opens(caller: Caller) -> Callable[[], int]:
            def work() -> int:
                for pid in ids:
                    with contextlib.suppress(HubError):
                        record_json(conn, policy, caller, pid, AuditContext("GET", "/api/persons", None))
                return len(ids)
            return work

        def searches(c: Connection = conn) -> int:
            for family in FAMILY:
                search_people(c, policy, worker, PersonQuery(family=family), AuditContext("GET", "/", None),
                              limit=20)
            return len(FAMILY)

        opens(clinician)()  # warm: statements prepared, pages cached
        figures = {
            "record open, clinician": rounds(opens(clinician), args.rounds),
            "record open, social worker (caseload rule)": rounds(opens(worker), args.rounds),
            "search page by family name, social worker": rounds(searches, args.rounds),
        }
    load = os.getloadavg()
    print(f"{len(ids)} people, {args.rounds} rounds, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for name, (best, median) in figures.items():
        print(f"  {name:<46} CPU per call: best {best:7.0f} us, median {median:7.0f} us")
    store.dispose()


if __name__ == "__main__":
    main()
