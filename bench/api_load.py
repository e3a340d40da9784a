"""Benchmark: the shared record under the council's load, on 127.0.0.1 only, bounded in time.

1. Builds (once, cached under var/bench/) a store of ``--people`` synthetic people
   (default 100,000) with episodes, referrals, assessments, plans, commitments,
   health events, documents, relationships, flags and consents, loaded through
   the real pipeline.
2. Serves the hub with ``carehub serve`` (one uvicorn worker) and, in the same
   run, a bare FastAPI endpoint returning pre-serialised static JSON of the same
   size as a record answer.
3. *The council's day*: ``--users`` (650) concurrent users, each searching by
   name, opening the first record found and reading its timeline, with 2 s
   think time between requests; prints p50/p95/p99. Target p95 < 300 ms, every
   request audited (the audit row count is checked against the requests made).
4. *Saturation*: 50 connections with no think time on record open, beside the
   bare endpoint; prints requests/s and the ratio. Target >= 40 %.

    python bench/api_load.py [--people 100000] [--seconds 30] [--users 650]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.access.tokens import DemoIssuer  # noqa: E402
from hub.store.audit import AuditEvent  # noqa: E402
from hub.store.db import Store  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.tables import PersonIndex  # noqa: E402
from tests.record.synthetic import FAMILY, Dataset, add_random  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = """
import os
from fastapi import FastAPI
from fastapi.responses import Response
body = b'{"x":"' + b"a" * (int(os.environ["BARE_BYTES"]) - 8) + b'"}'
app = FastAPI()
@app.get("/bare")
def bare() -> Response:
    return Response(body, media_type="application/json")
"""


def build_store(url: str, people: int) -> None:
    """Fill the store through the pipeline, 5,000 people per batch (skipped when already built)."""
    store = Store(url)
    upgrade(store.engine)
    with store.session() as s:
        have = s.scalar(select(func.count()).select_from(PersonIndex)) or 0
    started = time.perf_counter()
    for offset in range(have, people, 5000):
        data = Dataset()
        add_random(data, min(5000, people - offset), seed=offset, offset=offset)
        with store.session() as session:
            data.load(session)
        print(f"  loaded {offset + min(5000, people - offset):,} people", flush=True)
    if have < people:
        print(f"store built: {people:,} people in {time.perf_counter() - started:.0f} s")
    store.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server on {port} did not start: {proc.stderr.read().decode() if proc.stderr else ''}")


async def council_day(base: str, token: str, users: int, seconds: float, think: float) -> tuple[list[float], int]:
    """Each user: search, open the first record, read its timeline; think between requests."""
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=users + 10, max_keepalive_connections=users + 10)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=30) as client:

        async def timed(path: str, params: dict[str, str] | None = None) -> httpx.Response | None:
            nonlocal errors
            t0 = time.perf_counter()
            try:
                r = await client.get(path, params=params)
            except httpx.HTTPError:
                errors += 1
                return None
            latencies.append(time.perf_counter() - t0)
            if r.status_code >= 500:
                errors += 1
            return r

        async def user(n: int) -> None:
            rng = random.Random(n)
            await asyncio.sleep(rng.random() * think)
            while time.monotonic() < stop:
                found = await timed("/api/persons", {"family": rng.choice(FAMILY), "limit": "10"})
                await asyncio.sleep(think)
                items = found.json()["items"] if found is not None and found.status_code == 200 else []
                if not items or time.monotonic() >= stop:
                    continue
                pid = rng.choice(items)["id"]
                await timed(f"/api/persons/{pid}/record")
                await asyncio.sleep(think)
                if time.monotonic() < stop:
                    await timed(f"/api/persons/{pid}/timeline")
                    await asyncio.sleep(think)

        await asyncio.gather(*(user(n) for n in range(users)))
    return latencies, errors


async def saturate(url: str, token: str | None, connections: int, seconds: float) -> int:
    """Requests completed by ``connections`` loops with no think time."""
    done = 0
    stop = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers, limits=httpx.Limits(max_connections=connections), timeout=30
                                 ) as client:

        async def loop() -> None:
            nonlocal done
            while time.monotonic() < stop:
                r = await client.get(url)
                if r.status_code == 200:
                    done += 1

        await asyncio.gather(*(loop() for _ in range(connections)))
    return done


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=650)
    parser.add_argument("--think", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="Length of each phase.")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--database-url", default=None, help="Default: a SQLite file under var/bench/.")
    args = parser.parse_args()

    bench_dir = ROOT / "var" / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{bench_dir / f'api_load_{args.people}.db'}"
    build_store(url, args.people)

    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    env.update({"CAREHUB_DATABASE_URL": url, "CAREHUB_DATA_DIR": str(bench_dir), "CAREHUB_LOG_LEVEL": "WARNING"})
    hub_port, bare_port = free_port(), free_port()
    issuer = DemoIssuer("https://carehub.local/demo", bench_dir, "carehub")
    token = issuer.issue("bench.clinician", "clinician", "ICT-1", ttl=3600)
    hub = start([sys.executable, "-m", "hub", "serve", "--host", "127.0.0.1", "--port", str(hub_port)], env, hub_port)
    bare = None
    try:
        base = f"http://127.0.0.1:{hub_port}"
        probe = httpx.get(f"{base}/api/persons", params={"family": FAMILY[0], "limit": "1"},
                          headers={"Authorization": f"Bearer {token}"}).json()["items"][0]["id"]
        record_url = f"{base}/api/persons/{probe}/record"
        size = len(httpx.get(record_url, headers={"Authorization": f"Bearer {token}"}).content)
        (bench_dir / "bare_app.py").write_text(BARE_APP)
        bare = start([sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port",
                      str(bare_port), "--log-level", "warning", "--app-dir", str(bench_dir)],
                     {**env, "BARE_BYTES": str(size)}, bare_port)
        store = Store(url)
        with store.session() as s:
            audit_before = s.scalar(select(func.count()).select_from(AuditEvent)) or 0

        print(f"\nthe council's day: {args.users} users, {args.think:.0f} s think time, {args.seconds:.0f} s "
              f"on {args.people:,} people")
        t0 = time.perf_counter()
        latencies, errors = asyncio.run(council_day(base, token, args.users, args.seconds, args.think))
        elapsed = time.perf_counter() - t0
        with store.session() as s:
            audited = (s.scalar(select(func.count()).select_from(AuditEvent)) or 0) - audit_before
        print(f"  requests {len(latencies):,} ({len(latencies) / elapsed:.0f}/s offered and served), errors {errors}")
        print(f"  p50 {pct(latencies, 50):.0f} ms   p95 {pct(latencies, 95):.0f} ms   p99 {pct(latencies, 99):.0f} ms"
              f"   (target p95 < 300 ms)")
        print(f"  audit rows written {audited:,} for {len(latencies) + errors:,} requests")

        print(f"\nsaturation: {args.connections} connections, no think time, {args.seconds:.0f} s each "
              f"(record answer {size:,} bytes)")
        rec = asyncio.run(saturate(record_url, token, args.connections, args.seconds)) / args.seconds
        bare_rps = asyncio.run(saturate(f"http://127.0.0.1:{bare_port}/bare", None, args.connections,
                                        args.seconds)) / args.seconds
        print(f"  record open {rec:.0f} req/s   bare FastAPI static JSON {bare_rps:.0f} req/s   "
              f"ratio {rec / bare_rps:.0%}   (target >= 40%)")
        store.dispose()
    finally:
        for proc in (hub, bare):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=20)


if __name__ == "__main__":
    main()
