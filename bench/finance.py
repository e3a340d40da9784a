"""Benchmark: the finance link's pull feed and its SOAP push, with their same-run floors.

(a) **The pull feed**: N commitment versions (100,000 by default) in a fresh store, read
through every page of ``GET /api/finance/commitments`` over real HTTP from a
`carehub serve` process, by a client that keeps the ``next`` cursor. Printed:
versions/s over the whole walk, the p50 and p95 time per page, and the server's CPU
per version (read from /proc). Target: >= 10,000 versions/s on SQLite.

(b) **The SOAP push**: P versions (2,000 by default) as change events in the outbox,
pushed by a delivery loop (the hub's own worker loop, in this process) through
``finance_link.soap.FinanceTarget`` to the ERP simulator (`carehub simulate finance`,
its own process) until every one is committed; beside it, in the same run and to the
same simulator, **the floor**: a bare zeep client sending the same messages (fresh line
ids, so the ERP applies each) one after the other with nothing else around it.
Printed: commitments/s of each, the ratio, and this process's CPU per commitment
(delivery loop and store vs bare zeep). Target: the hub >= 50% of the floor.
Rounds alternate floor and hub; medians are reported.

The versions are synthetic (home care and residential lines, all money Decimal-exact)
and written in bulk; their events go through the core's ``append_events`` as the
derivation writes them.

    python bench/finance.py [--versions 100000] [--page 5000] [--push 2000] [--batch 100] [--rounds 3]
                            [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import requests
import zeep
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from finance_link.commitments import announce, feed_item, line_id_for, total_pence  # noqa: E402
from finance_link.soap import BINDING, OPERATION, WSDL, request_of  # noqa: E402
from hub.delivery.config import DeliveryConfig  # noqa: E402
from hub.delivery.worker import DeliveryLoop, ensure_circuits  # noqa: E402
from hub.settings import Settings, WorkerSettings  # noqa: E402
from hub.store.canonical import event_id_for  # noqa: E402
from hub.store.db import Store  # noqa: E402
from hub.store.finance import FinanceVersion  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.tables import utcnow  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.waiting import wait_until_served  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CARHUB = [sys.executable, "-m", "hub"]
FEED_TARGET = 10_000
PUSH_SHARE_TARGET = 0.50
SERVICES = (("home_care", "hour", "hourly", 2150, 1000, "52101"),
            ("residential", "week", "weekly", 89500, 100, "52110"),
            ("day_care", "day", "daily", 4800, 300, "52120"))


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def version_rows(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` synthetic versions: 4 versions per line (create, amend, amend, close), lines interleaved."""
    rows = []
    now = utcnow()
    lines = -(-n // 4)
    for i in range(n):  # version by version across lines, as approvals and then amendments arrive
        line, number = i % lines, i // lines + 1
        service, unit, period, cost, units, subjective = SERVICES[line % len(SERVICES)]
        units += 100 * (number - 1) if number < 4 else 0
        weekly = cost * units // 100
        start = date(2026, 1, 5) + timedelta(days=line % 200)
        end = start + timedelta(days=83) if number == 4 else None
        total, basis = total_pence(weekly, start, end)
        person = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-person/{tag}/{line % max(1, lines // 2)}"))
        line_id = line_id_for(str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-service/{tag}/{line}")))
        rows.append({
            "line_id": line_id, "version": number, "action": ("create", "amend", "amend", "close")[number - 1],
            "reason": "approved" if number == 1 else f"units_per_week changed ({number})", "person_id": person,
            "care_plan_id": None, "service_type": service, "unit": unit, "cost_period": period,
            "provider_code": f"P{1 + line % 50:04d}", "supplier_number": f"{700001 + line % 50:06d}",
            "supplier_site": f"{1 + (1 + line % 50) % 3:02d}", "cost_centre": "ASC110", "subjective": subjective,
            "vat_treatment": "exempt", "unit_cost_pence": cost, "units_x100": units, "weekly_pence": weekly,
            "vat_weekly_pence": 0, "contribution_pence": 2500, "total_pence": total, "total_basis": basis,
            "delta_weekly_pence": weekly if number == 1 else cost, "delta_total_pence": total, "start": start,
            "end": end, "approved_by": "Team Manager", "approved_on": start - timedelta(days=1),
            "event_id": event_id_for(line_id, number, "created" if number == 1 else "updated"), "recorded_at": now,
        })
        rows[-1]["item"] = orjson.dumps(feed_item(FinanceVersion(**rows[-1]))).decode()
    return rows


def write_versions(store: Store, rows: list[dict[str, Any]], *, events: bool) -> None:
    with store.session() as session:
        for start in range(0, len(rows), 5000):
            chunk = rows[start:start + 5000]
            session.execute(insert(FinanceVersion), chunk)
            if events:
                announce(session, [FinanceVersion(**r) for r in chunk])


# -- (a) the pull feed -----------------------------------------------------------------------------------------


def bench_feed(store: Store, url: str, env: dict[str, str], versions: int, page: int) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen([*CARHUB, "serve", "--port", str(port), "--no-access-log"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_served(f"{base}/health", server, "the hub's server")
        token = subprocess.run([*CARHUB, "token", "--user", "bench.finance", "--role", "finance_officer"],
                               env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        http.get(f"{base}/api/finance/commitments", params={"limit": 1}, timeout=60).raise_for_status()  # warm
        cpu0, started, since = proc_cpu(server.pid), time.perf_counter(), None
        pages: list[float] = []
        seen = 0
        while True:
            t0 = time.perf_counter()
            answer = http.get(f"{base}/api/finance/commitments",
                              params={"limit": page, **({"since": since} if since else {})}, timeout=120)
            answer.raise_for_status()
            body = answer.json()
            pages.append(time.perf_counter() - t0)
            if not body["items"]:
                break
            seen += len(body["items"])
            since = body["next"]
        wall = time.perf_counter() - started
        cpu = proc_cpu(server.pid) - cpu0
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert seen == versions, f"the feed gave {seen} of {versions} versions"
    ordered = sorted(pages[:-1])
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {"versions/s": seen / wall, "pages": len(pages) - 1, "p50 ms": statistics.median(ordered) * 1000,
            "p95 ms": p95 * 1000, "server CPU us/version": cpu / seen * 1e6}


# -- (b) the SOAP push -----------------------------------------------------------------------------------------


def push_hub(store: Store, settings: Settings, erp_url: str, n: int, batch: int, tag: str) -> dict[str, float]:
    write_versions(store, version_rows(n, tag), events=True)
    config = DeliveryConfig.model_validate({
        "targets": {"finance": {"adapter": "finance_link.soap:FinanceTarget", "batch_size": batch,
                                "timeout_seconds": 30, "options": {"url": erp_url, "audit_store": store.url},
                                "retry": {"max_attempts": 10, "base_seconds": 0.1, "max_seconds": 1}}},
        "subscriptions": [{"target": "finance", "entity_types": ["CommitmentLine"]}]})
    ensure_circuits(store, ["finance"])
    loop = DeliveryLoop(store, settings, config, f"bench-{tag}", threading.Event())
    cpu0, started = time.process_time(), time.perf_counter()
    delivered = 0
    try:
        while delivered < n:
            handled = loop.run_once()
            delivered += handled
            if not handled:
                time.sleep(0.005)
    finally:
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
        loop.close()
    with store.session() as session:  # every event of the run went (the lanes' cursors say so)
        left = session.execute(text("SELECT count(*) FROM deliveries WHERE status <> 'delivered'")).scalar()
    assert not left, f"{left} deliveries not delivered"
    return {"commitments/s": n / wall, "CPU us/commitment": cpu / n * 1e6}


def push_floor(erp_url: str, n: int, tag: str) -> dict[str, float]:
    items = [feed_item(FinanceVersion(**r)) for r in version_rows(n, tag)]
    client = zeep.Client(str(WSDL))
    service = client.create_service(BINDING, erp_url)
    cpu0, started = time.process_time(), time.perf_counter()
    for item in items:
        getattr(service, OPERATION[item["action"]])(**request_of(item))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    return {"commitments/s": n / wall, "CPU us/commitment": cpu / n * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=5000)
    parser.add_argument("--push", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (a fresh database is not made: "
                                                            "give an empty one); SQLite in a temp dir otherwise")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-finance-"))
    url = args.database_url or f"sqlite:///{work / 'hub.db'}"
    store = Store(url)
    upgrade(store.engine)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    env.update({"CAREHUB_DATABASE_URL": url, "CAREHUB_DATA_DIR": str(work / "var"), "CAREHUB_AUTH__DEMO": "true",
                "CAREHUB_LOG_LEVEL": "WARNING",
                "CAREHUB_FINANCE__FEED_MAX_LIMIT": str(max(args.page, 5000))})
    print(f"store {store.engine.dialect.name}; {os.cpu_count()} cores; {load()}")

    t0 = time.perf_counter()
    write_versions(store, version_rows(args.versions, "feed"), events=False)
    print(f"(a) {args.versions:,} versions written in {time.perf_counter() - t0:.1f} s; pull feed, pages of "
          f"{args.page:,} over HTTP")
    feeds = []
    for r in range(args.rounds):
        result = bench_feed(store, url, env, args.versions, args.page)
        feeds.append(result)
        print(f"    round {r + 1}: {result['versions/s']:,.0f} versions/s, {result['pages']} pages, "
              f"p50 {result['p50 ms']:.0f} ms, p95 {result['p95 ms']:.0f} ms per page, server CPU "
              f"{result['server CPU us/version']:.1f} us/version; {load()}")
    rate = statistics.median(f["versions/s"] for f in feeds)
    verdict = "met" if rate >= FEED_TARGET else "NOT met"
    print(f"    median {rate:,.0f} versions/s (target >= {FEED_TARGET:,}: {verdict}),"
          f" p95 {statistics.median(f['p95 ms'] for f in feeds):.0f} ms per page")

    with store.session() as session:  # the push runs on its own versions
        session.execute(text("DELETE FROM finance_versions"))
    sim_port = free_port()
    simulator = subprocess.Popen([*CARHUB, "simulate", "finance", "--port", str(sim_port)], env=env, cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    erp_url = f"http://127.0.0.1:{sim_port}/finance/commitments"
    wait_until_served(f"{erp_url}?wsdl", simulator, "the ERP simulator", timeout=30)
    settings = Settings(database_url=url, data_dir=work / "var", sources={},
                        worker=WorkerSettings(poll_seconds=0.01, lease_seconds=60))
    print(f"(b) SOAP push of {args.push:,} versions to the ERP simulator (its own process), batches of {args.batch}")
    hubs, floors = [], []
    try:
        for r in range(args.rounds):
            floor = push_floor(erp_url, args.push, f"floor-{r}")
            cpu_sim0 = proc_cpu(simulator.pid)
            hub = push_hub(store, settings, erp_url, args.push, args.batch, f"hub-{r}")
            sim_cpu = (proc_cpu(simulator.pid) - cpu_sim0) / args.push * 1e6
            floors.append(floor)
            hubs.append(hub)
            print(f"    round {r + 1}: bare zeep {floor['commitments/s']:,.0f}/s ({floor['CPU us/commitment']:.0f} us "
                  f"CPU each); through the outbox {hub['commitments/s']:,.0f}/s ({hub['CPU us/commitment']:.0f} us "
                  f"CPU each; the ERP simulator {sim_cpu:.0f} us each): "
                  f"{hub['commitments/s'] / floor['commitments/s']:.0%} of the floor; {load()}")
    finally:
        simulator.terminate()
        simulator.wait(timeout=20)
    share = statistics.median(h["commitments/s"] / f["commitments/s"] for h, f in zip(hubs, floors, strict=True))
    print(f"    median: through the outbox {statistics.median(h['commitments/s'] for h in hubs):,.0f}/s, bare zeep "
          f"{statistics.median(f['commitments/s'] for f in floors):,.0f}/s: {share:.0%} of the floor "
          f"(target >= {PUSH_SHARE_TARGET:.0%}: {'met' if share >= PUSH_SHARE_TARGET else 'NOT met'})")
    store.dispose()


if __name__ == "__main__":
    main()
