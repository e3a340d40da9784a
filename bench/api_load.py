"""Benchmark: the shared record under the council's load, on 127.0.0.1 only, bounded in time.

1. Builds (once, cached under var/bench/) a store of ``--people`` synthetic people
   (default 100,000) with episodes, referrals, assessments, plans, commitments,
   health events, documents, relationships, flags and consents, loaded through
   the real pipeline; then reads the SQLite file once, so the run starts with
   the store in the page cache, as a hub serving all day would have it.
2. Serves the hub with ``carehub serve --workers N --no-access-log`` and, in the
   same run and served the same way (:func:`hub.api.server.serve`: gunicorn with
   uvicorn workers, each on its own socket), a bare FastAPI endpoint returning
   pre-serialised static JSON of the same size as a record answer.
3. *The council's day*: ``--users`` (650) concurrent users, each searching by
   name, opening a record found and reading its timeline, with 2 s think time
   between requests; prints p50/p95/p99. Target p95 < 300 ms, every request
   audited (the audit row count is checked against the requests made).
4. *Saturation*: 50 connections with no think time on record open, beside the
   bare endpoint, alternating in slices; prints requests/s and the ratio.
   Target >= 40 %.
5. With ``--phases routing``: record open through the direct way in
   (:mod:`hub.api.hot`) beside the same app built without it (``api.hot_routes =
   false``: FastAPI's router), both served by ``carehub serve``, in alternating
   slices, each with its p50/p95, CPU per request and each worker's share.
6. With ``--heavy N``: adds (through the same pipeline) N people with an open
   case as heavy as a real caseload's (a seed council reports about 27 pieces
   of work in progress per open case: episodes, referrals, assessments, plans,
   commitments, health events, flags, documents, relationships), one in
   ``--tail-every`` of them with a long history of hundreds of items; then runs
   the day again with every record opened being a heavy one (the same search,
   record, timeline mix) and the saturation on a heavy record and on a long
   history, each beside a bare endpoint of that answer's size, printed beside
   the light figures.

Beside each wall-clock figure it prints the load average and the servers' CPU
per request (the cores are shared). The load generator is a small HTTP/1.1
client on asyncio (uvloop), and prints its own CPU.

    python bench/api_load.py [--people 100000] [--seconds 30] [--users 650] [--workers 2] [--heavy 1000]
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
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.access.tokens import DemoIssuer  # noqa: E402
from hub.store.audit import AuditEvent  # noqa: E402
from hub.store.db import Store  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.tables import SourceLink  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.processes import socket_inodes  # noqa: E402
from tests.support.synthetic import (  # noqa: E402
    FAMILY,
    GIVEN,
    POSTCODES,
    SOURCE,
    STREETS,
    TEAMS,
    Dataset,
    add_random,
    nhs_number,
    person_payload,
)

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = """
import os
from fastapi import FastAPI
from fastapi.responses import Response
body = b'{"x":"' + b"a" * (int(os.environ["BARE_BYTES"]) - 8) + b'"}'
heavy = b'{"x":"' + b"a" * (int(os.environ.get("BARE_HEAVY_BYTES", "16")) - 8) + b'"}'
app = FastAPI()
@app.get("/bare")
def bare() -> Response:
    return Response(body, media_type="application/json")
@app.get("/bare_heavy")
def bare_heavy() -> Response:
    return Response(heavy, media_type="application/json")
tail = b'{"x":"' + b"a" * (int(os.environ.get("BARE_TAIL_BYTES", "16")) - 8) + b'"}'
@app.get("/bare_tail")
def bare_tail() -> Response:
    return Response(tail, media_type="application/json")
def serving_app() -> FastAPI:
    # The arbiter imported the hub before the fork: that heap is frozen out of the collector's way (a bare worker
    # spawned on its own, as before 7 December, never had it); the collector's thresholds stay the default.
    from hub.runtime import settle
    settle()
    return app
"""
# Family names of the heavy people, none a prefix of FAMILY's: the light day's searches never find them.
HEAVY_FAMILY = ["Ashworth", "Bramley", "Crossley", "Denholme", "Ellison"]
HEAVY_PREFIX = "H-"  # source ids of the heavy people (the light ones are R-<n>)
# Items per heavy open case, by stream (27 in all, as a seed council reports per open case).
HEAVY_ITEMS = {"episodes": 2, "referrals": 2, "assessments": 5, "plans": 3, "commitments": 4,
               "health_events": 4, "flags": 2, "documents": 3, "relationships": 2}


def build_store(url: str, people: int) -> None:
    """Fill the store through the pipeline, 5,000 people per batch (skipped when already built)."""
    store = Store(url)
    upgrade(store.engine)
    with store.session() as s:
        # People loaded so far, by their source records: the person index holds fewer (identity merges the
        # dataset's deliberate duplicates), and counting it made every run load another batch.
        have = s.scalar(select(func.count()).select_from(SourceLink).where(
            SourceLink.source == SOURCE, SourceLink.stream == "people")) or 0
    started = time.perf_counter()
    for offset in range(have, people, 5000):
        data = Dataset()
        data.serial = offset * 20  # source ids unique across batches (a person brings about a dozen records)
        add_random(data, min(5000, people - offset), seed=offset, offset=offset)
        with store.session() as session:
            data.load(session)
        print(f"  loaded {offset + min(5000, people - offset):,} people", flush=True)
    if have < people:
        print(f"store built: {people:,} people in {time.perf_counter() - started:.0f} s")
    store.dispose()


def add_heavy(data: Dataset, count: int, offset: int, tail_every: int) -> None:
    """``count`` people with an open case of about 27 items; one in ``tail_every`` with hundreds (x12)."""
    rng = random.Random(10**6 + offset)
    today = date.today()
    for i in range(offset, offset + count):
        sid = f"{HEAVY_PREFIX}{i}"
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 60))
        pid = data.add("people", person_payload(
            rng.choice(GIVEN), rng.choice(HEAVY_FAMILY), born, rng.choice(["male", "female"]),
            nhs_number(400_000 + i), "01", rng.choice(POSTCODES), sid, house=rng.randrange(1, 200),
            street=rng.choice(STREETS)), sid)
        scale = 12 if tail_every and i % tail_every == 0 else 1

        def day(low: int, high: int) -> str:
            return (today - timedelta(days=rng.randrange(low, high))).isoformat()

        for n in range(HEAVY_ITEMS["episodes"] * scale):
            data.add("episodes", {"person": pid, "service_area": "adults", "team": rng.choice(TEAMS),
                                  "kind": rng.choice(["long_term_support", "safeguarding"]),
                                  "start": day(400, 3000), "end": None if n == 0 else day(1, 399),
                                  "allocated_worker": rng.choice(["Amira Khan", "Owen Price"])})
        for _ in range(HEAVY_ITEMS["referrals"] * scale):
            data.add("referrals", {"person": pid, "service_area": "adults", "received": day(1, 3000),
                                   "source": rng.choice(["police", "GP", "self"]), "outcome": "assessment"})
        for _ in range(HEAVY_ITEMS["assessments"] * scale):
            data.add("assessments", {"person": pid, "service_area": "adults",
                                     "kind": rng.choice(["single", "needs", "carers"]),
                                     "start": day(200, 3000), "completed": rng.choice([None, day(1, 199)])})
        for n in range(HEAVY_ITEMS["plans"] * scale):
            approved = n == 0 or rng.random() < 0.5
            plan = {"person": pid, "service_area": "adults", "kind": "care_plan", "start": day(300, 3000),
                    "status": "approved" if approved else rng.choice(["draft", "ended"])}
            if approved:
                plan.update(approved_on=day(1, 299), approved_by="Team Manager")
            data.add("plans", plan)
        for _ in range(HEAVY_ITEMS["commitments"] * scale):
            data.add("commitments", {"person": pid, "service_type": rng.choice(["home_care", "day_care"]),
                                     "unit_cost": f"{rng.randrange(1000, 90000) / 100:.2f}",
                                     "units_per_week": str(rng.randrange(1, 20)), "start": day(200, 3000),
                                     "status": "approved", "approved_by": "Team Manager", "approved_on": day(1, 199)})
        for _ in range(HEAVY_ITEMS["health_events"] * scale):
            data.add("health_events", {"person": pid, "kind": rng.choice(["admission", "discharge", "attendance"]),
                                       "status": "finished", "patient_class": "I", "facility": "RR8",
                                       "admitted": f"{day(5, 3000)}T08:15:00+00:00"})
        for _ in range(HEAVY_ITEMS["flags"] * scale):
            data.add("flags", {"person": pid, "category": rng.choice(["risk_to_staff", "medical", "communication"]),
                               "text": "Synthetic alert text", "start": day(30, 3000),
                               "end": rng.choice([None, day(1, 29)])})
        for n in range(HEAVY_ITEMS["documents"] * scale):
            data.add("documents", {"person": pid, "document_id": f"edrms-{sid}-{n}", "title": "Review notes",
                                   "document_type": rng.choice(["assessment", "letter"]),
                                   "created": f"{day(1, 3000)}T10:00:00+00:00"})
        for _ in range(HEAVY_ITEMS["relationships"] * scale):
            data.add("relationships", {"person": pid, "related_name": "Synthetic Relative",
                                       "kind": rng.choice(["child", "carer", "spouse", "other"]),
                                       "is_next_of_kin": rng.random() < 0.3})


def build_heavy(url: str, heavy: int, tail_every: int) -> list[tuple[str, str]]:
    """Add the heavy people through the pipeline, 500 per batch (once); their (source id, person id)s."""
    store = Store(url)
    linked = select(SourceLink.source_id, SourceLink.entity_id).where(
        SourceLink.source == SOURCE, SourceLink.stream == "people", SourceLink.source_id.like(f"{HEAVY_PREFIX}%"))
    with store.session() as s:
        have = len(s.execute(linked).all())
    started = time.perf_counter()
    for offset in range(have, heavy, 500):
        data = Dataset()
        data.serial = 10**9 + offset * 400  # source ids unique across batches and beside the light people's
        add_heavy(data, min(500, heavy - offset), offset, tail_every)
        with store.session() as session:
            data.load(session)
        print(f"  loaded {offset + min(500, heavy - offset):,} heavy people", flush=True)
    if have < heavy:
        print(f"heavy people built: {heavy:,} in {time.perf_counter() - started:.0f} s")
    with store.session() as s:
        rows = [(str(a), str(b)) for a, b in s.execute(linked).all()]
    store.dispose()
    return sorted(rows, key=lambda row: int(row[0].removeprefix(HEAVY_PREFIX)))[:heavy]


def warm_page_cache(url: str) -> None:
    """Read a SQLite store's file once, so the run starts with it in the operating system's page cache.

    A hub serving all day has its store's pages in memory; a freshly built or
    copied 2 GB file is read from disk at first, and random record opens that
    wait on the disk (measured in-process: 107 opens/s at 3.2 ms of CPU cold,
    720-890/s at 1.1-1.3 ms warm) set the day's p95 instead of the hub.
    """
    if not url.startswith("sqlite:///"):
        return
    path = Path(url.removeprefix("sqlite:///"))
    started, size = time.perf_counter(), 0
    with path.open("rb", buffering=0) as handle:
        while chunk := handle.read(1 << 20):
            size += len(chunk)
    print(f"page cache warmed: read {size / 2**20:,.0f} MiB of {path.name} in {time.perf_counter() - started:.1f} s")


def start(args: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start a server whose output goes to ``log`` (a pipe nobody reads would stall it once full)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server on {port} did not start: {log.read_text(errors='replace')[-2000:]}")


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1: GET only, Content-Length or chunked answers.

    The load generator shares the two cores with the servers it measures, so it
    speaks HTTP itself over asyncio (uvloop when installed) instead of through
    httpx, whose per-request cost would otherwise be the first bottleneck.
    """

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": "127.0.0.1", **headers}.items()).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.local_port = 0  # the client end's port: which worker holds the other end is read from /proc

    async def get(self, target: str) -> tuple[int, bytes]:
        """Status and body of ``GET target`` (reconnecting once when the server closed the connection)."""
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
                self.local_port = int(self.writer.get_extra_info("sockname")[1])
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(b"GET " + target.encode() + b" HTTP/1.1\r\n" + self.head + b"\r\n")
                return await self._answer(self.reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                fields[name.strip().lower()] = value.strip()
        if b"content-length" in fields:
            body = await reader.readexactly(int(fields[b"content-length"]))
        else:
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readexactly(2)
            body = b"".join(chunks)
        if fields.get(b"connection") == b"close":
            self.close()
        return status, body

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def council_day(port: int, token: str, users: int, seconds: float, think: float,
                      open_ids: list[str] | None = None) -> tuple[list[float], int]:
    """Each user: search, open a record found, read its timeline; think between requests.

    With ``open_ids`` the record opened (and its timeline) is one of those instead of one found:
    the same mix of requests, on the heavy records.
    """
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    auth = {"Authorization": f"Bearer {token}"}

    async def user(n: int) -> None:
        nonlocal errors
        rng = random.Random(n)
        conn = Connection(port, auth)

        async def timed(target: str) -> tuple[int, bytes] | None:
            nonlocal errors
            t0 = time.perf_counter()
            try:
                answer = await conn.get(target)
            except OSError:
                errors += 1
                return None
            latencies.append(time.perf_counter() - t0)
            if answer[0] >= 500:
                errors += 1
            return answer

        await asyncio.sleep(rng.random() * think)
        while time.monotonic() < stop:
            found = await timed(f"/api/persons?family={rng.choice(FAMILY)}&limit=10")
            await asyncio.sleep(think)
            items = orjson.loads(found[1])["items"] if found is not None and found[0] == 200 else []
            if not items or time.monotonic() >= stop:
                continue
            pid = rng.choice(open_ids) if open_ids else rng.choice(items)["id"]
            await timed(f"/api/persons/{pid}/record")
            await asyncio.sleep(think)
            if time.monotonic() < stop:
                await timed(f"/api/persons/{pid}/timeline")
                await asyncio.sleep(think)
        conn.close()

    await asyncio.gather(*(user(n) for n in range(users)))
    return latencies, errors


def owners_of_connections(root: int, port: int) -> dict[int, int]:
    """Which process under ``root`` holds the server end of each established connection to ``port``, by the
    client end's port (Linux /proc).

    The workers share the connections only as evenly as the listening sockets
    spread them, and a crowded worker is held to one core: the bench prints the
    split of every saturation slice, by connections and by requests answered.
    """
    by_inode: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    by_inode[fields[9]] = int(fields[2].rsplit(":", 1)[1], 16)
    owners: dict[int, int] = {}
    for pid in descendants(root):
        for inode in socket_inodes(pid) & by_inode.keys():
            owners[by_inode[inode]] = pid
    return owners


@dataclass
class Slice:
    """What one saturation slice measured: requests answered 200, each request's latency, and (when the
    server's process tree was given) the connections and requests each worker took."""

    done: int = 0
    latencies: list[float] = field(default_factory=list)
    by_client_port: Counter[int] = field(default_factory=Counter)
    owners: dict[int, int] = field(default_factory=dict)

    def connections_per_worker(self) -> list[int]:
        """Connections each worker held a second into the slice, most first."""
        return sorted(Counter(self.owners.values()).values(), reverse=True)

    def requests_per_worker(self) -> list[int]:
        """Requests each worker answered, most first (a connection that moved worker is not counted)."""
        counts: Counter[int] = Counter()
        for client_port, requests in self.by_client_port.items():
            if client_port in self.owners:
                counts[self.owners[client_port]] += requests
        return sorted(counts.values(), reverse=True)


async def saturate(port: int, target: str, token: str | None, connections: int, seconds: float,
                   root: int | None = None) -> Slice:
    """``connections`` keep-alive loops with no think time on ``target`` for ``seconds``.

    With ``root``, the slice also gets which of its processes holds each connection, a second in.
    """
    result = Slice()
    stop = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if root is not None:
        asyncio.get_running_loop().call_later(min(1.0, seconds / 2),
                                              lambda: result.owners.update(owners_of_connections(root, port)))

    async def loop() -> None:
        conn = Connection(port, headers)
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            status, _ = await conn.get(target)
            result.latencies.append(time.perf_counter() - t0)
            if status == 200:
                result.done += 1
                result.by_client_port[conn.local_port] += 1
        conn.close()

    await asyncio.gather(*(loop() for _ in range(connections)))
    return result


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when it is installed (it is, with uvicorn[standard]), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def cpu_seconds(root: int) -> float:
    """CPU time (user + system) used so far by process ``root`` and all its descendants (Linux /proc).

    Wall-clock figures on shared cores move with everyone else's load; the
    server's own CPU per request does not, so the bench prints both.
    """
    times = _process_table()[1]
    return sum(times.get(pid, 0.0) for pid in descendants(root))


def _process_table() -> tuple[dict[int, int], dict[int, float]]:
    """Every process's parent and CPU seconds so far (user + system), from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    return parents, times


def descendants(root: int) -> set[int]:
    """Process ``root`` and all its descendants."""
    parents = _process_table()[0]
    tree, frontier = {root}, [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(frontier)
    return tree


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (the cores are shared: every figure needs its load)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=650)
    parser.add_argument("--think", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="Length of each phase.")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2,
                        help="uvicorn worker processes, for the hub and the bare endpoint alike.")
    parser.add_argument("--phases", default="day,saturation",
                        help="Which phases to run (comma separated): day, saturation, routing.")
    parser.add_argument("--slices", type=int, default=3, help="Saturation: alternate hub and bare this many times.")
    parser.add_argument("--database-url", default=None, help="Default: a SQLite file under var/bench/.")
    parser.add_argument("--heavy", type=int, default=0,
                        help="Also add this many heavy open cases (about 27 items each) and measure on them.")
    parser.add_argument("--tail-every", type=int, default=20,
                        help="Heavy: one in this many has a long history of hundreds of items (x12).")
    args = parser.parse_args()
    phases = set(args.phases.split(","))

    bench_dir = ROOT / "var" / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{bench_dir / f'api_load_{args.people}.db'}"
    build_store(url, args.people)
    heavy_rows = build_heavy(url, args.heavy, args.tail_every) if args.heavy else []
    warm_page_cache(url)

    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    # The benchmark signs its users in with the demo issuer: demo sign-in on for the server it starts.
    env.update({"CAREHUB_DATABASE_URL": url, "CAREHUB_DATA_DIR": str(bench_dir), "CAREHUB_LOG_LEVEL": "WARNING",
                "CAREHUB_AUTH__DEMO": "true"})
    hub_port, bare_port, routed_port = free_port(), free_port(), free_port()
    issuer = DemoIssuer("https://carehub.local/demo", bench_dir, "carehub")
    token = issuer.issue("bench.clinician", "clinician", "ICT-1", ttl=3600)
    hub = start([sys.executable, "-m", "hub", "serve", "--host", "127.0.0.1", "--port", str(hub_port),
                 "--workers", str(args.workers), "--no-access-log"], env, hub_port, bench_dir / "hub.log")
    bare = routed = None
    try:
        auth = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{hub_port}"
        probe = httpx.get(f"{base}/api/persons", params={"family": FAMILY[0], "limit": "1"},
                          headers=auth).json()["items"][0]["id"]
        record_path = f"/api/persons/{probe}/record"
        size = len(httpx.get(f"{base}{record_path}", headers=auth).content)
        heavy_ids = [pid for _, pid in heavy_rows]
        heavy_size = tail_size = 0
        heavy_path = tail_path = ""
        if heavy_rows:
            # The saturation's heavy record: a typical open case (not one of the long histories).
            typical = next(pid for sid, pid in heavy_rows
                           if int(sid.removeprefix(HEAVY_PREFIX)) % args.tail_every != 0)
            heavy_path = f"/api/persons/{typical}/record"
            heavy_size = len(httpx.get(f"{base}{heavy_path}", headers=auth).content)
            tail_path = f"/api/persons/{heavy_rows[0][1]}/record"  # H-0: a long history
            tail_size = len(httpx.get(f"{base}{tail_path}", headers=auth).content)
        (bench_dir / "bare_app.py").write_text(BARE_APP)
        # Served as `carehub serve` serves the hub: the same gunicorn settings and workers (hub.api.server).
        serve_bare = (f"import sys; sys.path.insert(0, {str(bench_dir)!r}); from bare_app import serving_app; "
                      f"from hub.api.server import serve; "
                      f"serve('127.0.0.1', {bare_port}, {args.workers}, access_log=False, app=serving_app)")
        bare = start([sys.executable, "-c", serve_bare],
                     {**env, "BARE_BYTES": str(size), "BARE_HEAVY_BYTES": str(max(16, heavy_size)),
                      "BARE_TAIL_BYTES": str(max(16, tail_size))}, bare_port,
                     bench_dir / "bare.log")
        if "routing" in phases:
            routed = start([sys.executable, "-m", "hub", "serve", "--host", "127.0.0.1", "--port", str(routed_port),
                            "--workers", str(args.workers), "--no-access-log"],
                           {**env, "CAREHUB_API__HOT_ROUTES": "false"}, routed_port, bench_dir / "routed.log")
        store = Store(url)
        print(f"\nserving: hub and bare endpoint each with {args.workers} uvicorn worker(s) under gunicorn; "
              f"{os.cpu_count()} cores; {load_average()}")

        def day(label: str, open_ids: list[str] | None) -> None:
            with store.session() as s:
                audit_before = s.scalar(select(func.count()).select_from(AuditEvent)) or 0
            print(f"\nthe council's day{label}: {args.users} users, {args.think:.0f} s think time, "
                  f"{args.seconds:.0f} s on {args.people:,} people")
            t0, cpu0, own0 = time.perf_counter(), cpu_seconds(hub.pid), time.process_time()
            latencies, errors = run(council_day(hub_port, token, args.users, args.seconds, args.think, open_ids))
            elapsed, cpu = time.perf_counter() - t0, cpu_seconds(hub.pid) - cpu0
            own = time.process_time() - own0
            with store.session() as s:
                audited = (s.scalar(select(func.count()).select_from(AuditEvent)) or 0) - audit_before
            print(f"  requests {len(latencies):,} ({len(latencies) / elapsed:.0f}/s offered and served), "
                  f"errors {errors}")
            print(f"  p50 {pct(latencies, 50):.0f} ms   p95 {pct(latencies, 95):.0f} ms   "
                  f"p99 {pct(latencies, 99):.0f} ms   (target p95 < 300 ms)")
            print(f"  audit rows written {audited:,} for {len(latencies) + errors:,} requests")
            print(f"  hub CPU {cpu / max(1, len(latencies)) * 1000:.2f} ms per request "
                  f"({cpu / elapsed:.2f} cores); load generator {own / elapsed:.2f} cores   {load_average()}")

        def saturation(label: str, path: str, bare_target: str, answer: int) -> None:
            assert bare is not None
            print(f"\nsaturation{label}: {args.connections} connections, no think time, {args.seconds:.0f} s each "
                  f"(record answer {answer:,} bytes), in {args.slices} alternating slices")
            # Alternate the two in slices so that both see the same background load on the shared cores.
            part = args.seconds / args.slices
            rec_done = bare_done = 0
            rec_cpu = bare_cpu = 0.0
            own0 = time.process_time()
            for n in range(args.slices):
                cpu0 = cpu_seconds(hub.pid)
                rec = run(saturate(hub_port, path, token, args.connections, part, hub.pid))
                cpu1 = cpu_seconds(hub.pid)
                bare_cpu0 = cpu_seconds(bare.pid)
                bare_slice = run(saturate(bare_port, bare_target, None, args.connections, part, bare.pid))
                bare_cpu += cpu_seconds(bare.pid) - bare_cpu0
                rec_cpu += cpu1 - cpu0
                rec_done, bare_done = rec_done + rec.done, bare_done + bare_slice.done
                print(f"  slice {n + 1}: record open {rec.done / part:.0f} req/s, bare {bare_slice.done / part:.0f} "
                      f"req/s, {load_average()}; connections per worker: record "
                      f"{'/'.join(map(str, rec.connections_per_worker()))}, "
                      f"bare {'/'.join(map(str, bare_slice.connections_per_worker()))}")
            print(f"  record open {rec_done / args.seconds:.0f} req/s   bare FastAPI static JSON "
                  f"{bare_done / args.seconds:.0f} req/s   ratio {rec_done / max(1, bare_done):.0%}   (target >= 40%)")
            print(f"  server CPU per request: record open {rec_cpu / max(1, rec_done) * 1000:.2f} ms, "
                  f"bare {bare_cpu / max(1, bare_done) * 1000:.2f} ms   (ratio by CPU "
                  f"{(bare_cpu / max(1, bare_done)) / max(1e-9, rec_cpu / max(1, rec_done)):.0%}); load generator "
                  f"{(time.process_time() - own0) / (2 * args.seconds):.2f} cores")

        def side_by_side(title: str, arms: list[tuple[str, int, int]], target: str) -> None:
            """Saturation on ``target`` of each arm (name, port, server's process) in turn, in alternating slices
            (the order reversed every other slice), so that every arm sees the same background load."""
            part = args.seconds / args.slices
            print(f"\n{title}: {args.connections} connections, no think time, {args.slices} slices of {part:.0f} s "
                  f"per server, alternating")
            for _, port, _ in arms:  # not counted: every worker has built its app and answered before the slices
                run(saturate(port, target, token, args.connections, 3.0))
            seen = {name: Slice() for name, _, _ in arms}
            cpu = dict.fromkeys(seen, 0.0)
            busiest: dict[str, list[float]] = {name: [] for name in seen}
            for n in range(args.slices):
                for name, port, root in arms if n % 2 == 0 else arms[::-1]:
                    cpu0 = cpu_seconds(root)
                    one = run(saturate(port, target, token, args.connections, part, root))
                    cpu[name] += cpu_seconds(root) - cpu0
                    seen[name].done += one.done
                    seen[name].latencies.extend(one.latencies)
                    by_worker = one.requests_per_worker()
                    busiest[name].append(by_worker[0] / max(1, sum(by_worker)) if by_worker else float("nan"))
                    print(f"  slice {n + 1} {name:<34} {one.done / part:6,.0f} req/s   "
                          f"p50 {pct(one.latencies, 50):4.0f} ms   p95 {pct(one.latencies, 95):4.0f} ms   per worker: "
                          f"connections {'/'.join(map(str, one.connections_per_worker()))}, requests "
                          f"{'/'.join(map(str, by_worker))} ({busiest[name][-1]:.0%} on the busiest)   "
                          f"{load_average()}")
            for name, total in seen.items():
                shares = [share for share in busiest[name] if share == share] or [float("nan")]  # not NaN
                print(f"  {name:<42} {total.done / args.seconds:6,.0f} req/s   p50 {pct(total.latencies, 50):4.0f} ms"
                      f"   p95 {pct(total.latencies, 95):4.0f} ms   CPU {cpu[name] / max(1, total.done) * 1000:.2f} ms"
                      f"/request   busiest worker's share of requests {statistics.mean(shares):.0%} on average, "
                      f"{max(shares):.0%} at worst")

        if routed is not None:
            side_by_side(f"record open through the direct way (hub.api.hot) and through FastAPI's router, both "
                         f"served by carehub serve, {args.workers} workers each", [
                             ("direct (hub.api.hot)", hub_port, hub.pid),
                             ("routed (api.hot_routes = false)", routed_port, routed.pid)], record_path)
        if "day" in phases:
            day("", None)
        if "saturation" in phases:
            saturation("", record_path, "/bare", size)
        if heavy_ids:
            print(f"\nheavy records: {len(heavy_ids):,} open cases of about {sum(HEAVY_ITEMS.values())} items, "
                  f"one in {args.tail_every} with x12; typical record answer {heavy_size:,} bytes, "
                  f"long history {tail_size:,} bytes (light {size:,})")
            if "day" in phases:
                day(" on heavy records", heavy_ids)
            if "saturation" in phases:
                saturation(" on a heavy record", heavy_path, "/bare_heavy", heavy_size)
                saturation(" on a long history", tail_path, "/bare_tail", tail_size)
        store.dispose()
    finally:
        for proc in (hub, bare, routed):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=20)


if __name__ == "__main__":
    main()
