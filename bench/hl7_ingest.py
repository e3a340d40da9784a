"""Benchmark: HL7 v2 ADT over MLLP into the hub, ACKed after commit, on SQLite and PostgreSQL.

A synthetic day of a large trust's ADT (20,000 messages by default: registrations,
admissions, transfers, updates, discharges, cancellations) is sent to a real
``carehub mllp`` process over loopback, over 1 and over 8 connections; each
patient's messages go down one connection, in order. ``window`` is how many
messages a connection keeps in flight before it waits for an ACK (1 is the strict
original-mode sender; more lets the listener commit several together). Every ACK
must be AA.

Printed per run: messages/s ACKed after commit, p50 and p99 ACK latency, and the
share of the floor: the chosen parser (``health_link.hl7.parse``, python-hl7)
parsing the same messages alone, in the same run.

Targets: >= 500 messages/s on SQLite with one connection; end to end >= 40% of the floor.

    python bench/hl7_ingest.py [--messages 20000] [--strict-messages 2000] [--window 256] [--readers 1]
                               [--runs 1x1,1x256,8x1,8x32] [--pg postgresql+psycopg://...] [--pg-only]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from health_link.hl7 import END, frame, frames, parse  # noqa: E402
from health_link.simulator import synthetic_day  # noqa: E402
from hub.store.db import normalise_url  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

RATE_TARGET = 500.0
FLOOR_SHARE_TARGET = 0.40
CARHUB = Path(sys.executable).parent / "carehub"


def messages_for(n: int) -> list[str]:
    """At least n messages of synthetic days (distinct facilities per day), cut to n."""
    out: list[str] = []
    day = 0
    while len(out) < n:
        out += synthetic_day(2000, facility=f"R{day:02d}", seed=day)
        day += 1
    return out[:n]


def by_patient(messages: list[str], connections: int) -> list[list[str]]:
    """Deal the messages to connections, each patient's (by hospital number) to one connection, in order."""
    lanes: list[list[str]] = [[] for _ in range(connections)]
    for m in messages:
        found = re.search(r"\|(H\d+)\^\^\^(\w+)\^PI", m)
        key = found.group(0) if found else m
        lanes[hash(key) % connections].append(m)
    return lanes


def floor(messages: list[bytes]) -> float:
    """Messages/s the chosen parser reaches on its own."""
    start = time.perf_counter()
    for m in messages:
        parse(m)
    return len(messages) / (time.perf_counter() - start)


READERS = ["--readers", "1"]


def start_listener(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "CAREHUB_DATABASE_URL": url, "CAREHUB_DATA_DIR": str(workdir), "CAREHUB_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([str(CARHUB), "mllp", "--host", "127.0.0.1", "--port", str(port), *READERS], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if "listening" not in line:
        raise SystemExit(f"the listener did not start: {line}{proc.stdout.read().decode()[-2000:]}")
    # keep reading what the listener says, so a warning can never fill the pipe and stall it
    threading.Thread(target=lambda: [sys.stderr.write(f"listener: {raw.decode()}") for raw in proc.stdout or []],
                     daemon=True).start()
    return proc, port


def send_lane(port: int, lane: list[str], window: int, latencies: list[float], answers: dict[str, int]) -> None:
    """Send one connection's messages keeping ``window`` in flight; record each ACK's latency."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=600)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray()
    sent: list[float] = []
    acked = 0

    def read_one() -> None:
        nonlocal acked
        while True:
            found, _ = frames(buffer)
            if found:
                del buffer[:buffer.find(END) + len(END)]
                code = found[0].split(b"\rMSA|", 1)[1][:2].decode()
                answers[code] += 1
                latencies.append(time.perf_counter() - sent[acked])
                acked += 1
                return
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("listener closed")
            buffer.extend(chunk)

    for m in lane:
        sent.append(time.perf_counter())
        sock.sendall(frame(m))
        if len(sent) - acked >= window:
            read_one()
    while acked < len(sent):
        read_one()
    sock.close()


def run(url: str, label: str, messages: list[str], connections: int, window: int) -> dict[str, Any]:
    """One timed run on a fresh store."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_listener(url, Path(tmp))
        try:
            lanes = by_patient(messages, connections)
            latencies: list[float] = []
            answers: dict[str, int] = defaultdict(int)
            threads = [threading.Thread(target=send_lane, args=(port, lane, window, latencies, answers))
                       for lane in lanes]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(30)
    latencies.sort()
    if answers.get("AA", 0) != len(messages):
        raise SystemExit(f"{label}: not every message was accepted: {dict(answers)}")
    return {"label": label, "connections": connections, "window": window, "messages": len(messages),
            "seconds": elapsed, "rate": len(messages) / elapsed,
            "p50_ms": statistics.median(latencies) * 1000, "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000}


def fresh_sqlite(tmp: Path, name: str) -> str:
    path = tmp / f"{name}.db"
    return f"sqlite:///{path}"


def fresh_pg(base_url: str) -> tuple[str, str]:
    base = make_url(normalise_url(base_url))
    name = f"carehub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False), name


def drop_pg(base_url: str, name: str) -> None:
    admin = create_engine(make_url(normalise_url(base_url)), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--strict-messages", type=int, default=2_000,
                        help="messages for the strict (window 1, one connection) run")
    parser.add_argument("--window", type=int, default=64, help="messages in flight per connection when pipelined")
    parser.add_argument("--readers", type=int, default=1, help="reader processes of the listener")
    parser.add_argument("--runs", default="", help="only these runs, as CONNECTIONSxWINDOW,... (e.g. 1x256,8x32)")
    parser.add_argument("--pg-only", action="store_true", help="skip SQLite")
    parser.add_argument("--pg", default=os.environ.get("CAREHUB_TEST_DATABASE_URL"))
    args = parser.parse_args()
    READERS[1] = str(args.readers)
    messages = messages_for(args.messages)
    encoded = [m.encode() for m in messages]
    load = os.getloadavg()
    print(f"{len(messages):,} ADT messages, listener with {args.readers} reader process(es); load average "
          f"{load[0]:.2f} {load[1]:.2f}")
    plan = [(1, 1, messages[:args.strict_messages]), (1, args.window, messages), (8, 1, messages),
            (8, max(1, args.window // 8), messages)]
    if args.runs:
        wanted = {tuple(int(n) for n in run.split("x")) for run in args.runs.split(",")}
        plan = [p for p in plan if (p[0], p[1]) in wanted]
    backends = (["sqlite"] if not args.pg_only else []) + (["postgresql"] if args.pg else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            for n, (connections, window, batch) in enumerate(plan):
                pg_name = None
                if backend == "sqlite":
                    url = fresh_sqlite(Path(tmp), f"run{n}")
                else:
                    url, pg_name = fresh_pg(args.pg)
                try:
                    result = run(url, backend, batch, connections, window)
                finally:
                    if pg_name:
                        drop_pg(args.pg, pg_name)
                result["floor"] = floor(encoded[:len(batch)])
                result["load"] = os.getloadavg()[0]
                rows.append(result)
                print(f"{backend:10} conns {connections} window {window:3}: {result['messages']:6,} msgs in "
                      f"{result['seconds']:6.1f}s = {result['rate']:6.0f} msg/s, p50 {result['p50_ms']:7.1f} ms, "
                      f"p99 {result['p99_ms']:7.1f} ms; parse floor {result['floor']:6.0f} msg/s, "
                      f"share {result['rate'] / result['floor']:4.0%} (load {result['load']:.2f})", flush=True)
    ones = [r for r in rows if r["label"] == "sqlite" and r["connections"] == 1]
    if not ones:
        return
    best_one = max(r["rate"] for r in ones)
    best_share = max(r["rate"] / r["floor"] for r in ones)
    print(f"SQLite, one connection: best {best_one:.0f} msg/s (target {RATE_TARGET:.0f}: "
          f"{'met' if best_one >= RATE_TARGET else 'NOT met'}); share of floor {best_share:.0%} "
          f"(target {FLOOR_SHARE_TARGET:.0%}: {'met' if best_share >= FLOOR_SHARE_TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
