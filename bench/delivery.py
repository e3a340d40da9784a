"""Benchmark: change events delivered end to end by 1 and by 3 `carehub worker` processes on PostgreSQL.

Each run starts the workers on a fresh store, waits until they are ready, then
commits N outbox events (5 per person) in one transaction and times from that
commit until the last delivery is recorded (the last lane cursor moved past
its batch): leasing lanes (SKIP LOCKED), reading each lane's events in order,
the push and the cursor's advance. Beside it, the floor: the rows the workers
read (the outbox rows) claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and
marked done by a bare SQL loop on one connection, in batches of the same size:
in id order committing as usual and without waiting for the WAL flush (as the
workers commit), and lane by lane as the workers read them; the fastest of the
three is the target's floor. For reading the figures, the bare cursor loop: the
same lanes read behind a cursor moved per batch, with no Python, no push. Each
figure comes with the CPU time per event of the workers and their PostgreSQL
backends, which does not depend on what else the machine runs, and the 1-worker
run's ceiling: cores / CPU-seconds it used per wall-second, the most any number
of workers could multiply it on this machine.

Targets: 3 workers >= 2x one worker; one worker >= 30% of the floor.

    python bench/delivery.py [--events 20000] [--batch 200] [--target noop|http] [--repeat 3] [--entity-types T,U]
                             [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test] [--name NAME]

``--target noop`` pushes to ``adapters.noop_target:NoopTarget`` (in process);
``--target http`` to the counting target in discard mode on loopback, over real HTTP.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.simulators.counting_target import CountingTarget  # noqa: E402
from hub.store.db import Store, normalise_url  # noqa: E402
from hub.store.delivery import Delivery, DeliveryCursor  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.tables import OUTBOX_LANES, utcnow  # noqa: E402
from tests.support.delivery import add_events, start_worker, write_toml  # noqa: E402
from tests.support.postgres import empty_postgres  # noqa: E402

SPEEDUP_TARGET = 2.0
FLOOR_SHARE_TARGET = 0.30


def delivered(store: Store) -> int:
    """Events delivered so far: the lane cursors' counts (16 rows) and any delivery row delivered.

    Cheap enough to poll: a count(*) over the outbox every few milliseconds would take CPU from the very
    processes being measured.
    """
    with store.session() as s:
        lanes = s.scalar(select(func.coalesce(func.sum(DeliveryCursor.delivered), 0)))
        rows = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "delivered"))
    return int(lanes or 0) + int(rows or 0)


def last_recorded(store: Store) -> datetime:
    """When the last delivery was recorded: the latest cursor move (or delivery row)."""
    with store.session() as s:
        lane = s.scalar(select(func.max(DeliveryCursor.updated_at)).where(DeliveryCursor.delivered > 0))
        row = s.scalar(select(func.max(Delivery.delivered_at)))
    assert lane is not None or row is not None, "nothing was delivered"
    return max(t for t in (lane, row) if t is not None)


def cpu_seconds(url: str, pids: list[int]) -> float:
    """CPU time used so far by these processes and by every PostgreSQL backend serving ``url``'s database.

    Read from /proc (Linux; 0 elsewhere). Per event it tells what the delivery costs whatever else
    the machine is doing, where events/s depend on the share of the cores the run was given.
    """
    database = make_url(url).database
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        backends = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,))]
    total = 0
    for pid in [*pids, *backends]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.0


def run_workers(url: str, workers: int, events: int, batch: int, target: dict[str, object],
                tmp: Path, entity_types: list[str] | None = None) -> tuple[float, float, float]:
    """Events/s delivered end to end by ``workers`` worker processes, CPU microseconds per event, CPU/wall."""
    empty_postgres(url)
    subscriptions = write_toml(tmp / "subscriptions.toml", {
        "targets": {"bench": {**target, "batch_size": batch, "timeout_seconds": 30}},
        "subscriptions": [{"target": "bench", **({"entity_types": entity_types} if entity_types else {})}],
    })
    schedules = write_toml(tmp / "schedules.toml", {"jobs": {}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    env.update({
        "CAREHUB_DATABASE_URL": url, "CAREHUB_SUBSCRIPTIONS_FILE": str(subscriptions),
        "CAREHUB_SCHEDULES_FILE": str(schedules), "CAREHUB_SOURCES": "{}", "CAREHUB_LOG_LEVEL": "WARNING",
        "CAREHUB_WORKER__POLL_SECONDS": "0.02",
    })
    procs: list[subprocess.Popen[bytes]] = []
    store = Store(url)
    try:
        procs = [start_worker(env, tmp / f"worker{workers}-{i}.log") for i in range(workers)]
        add_events(store, events // 5, 5)  # one transaction: the events appear together at its commit
        committed = utcnow()
        cpu_before = cpu_seconds(url, [p.pid for p in procs])  # the workers' CPU, not the events' insert
        wall_before = time.perf_counter()
        while (n := delivered(store)) < events:
            time.sleep(0.05)
        cpu = cpu_seconds(url, [p.pid for p in procs]) - cpu_before
        wall = time.perf_counter() - wall_before
        assert n == events, (n, events)
        # The end is when the last delivery was recorded (the workers' clock is this machine's clock),
        # not when this loop happened to look.
        elapsed = (last_recorded(store) - committed).total_seconds()
        print(f"  {workers} worker(s): last delivery at {elapsed:.2f}s, {cpu:.2f} CPU-s "
              f"({cpu / wall:.2f} cores busy)", flush=True)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        store.dispose()
    return events / elapsed, cpu / events * 1e6, cpu / wall


def reset_outbox(url: str) -> None:
    """Make every outbox row pending again and every cursor 0, then vacuum: each floor starts alike."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("UPDATE outbox SET status = 'pending'"))
        conn.execute(text("UPDATE delivery_cursors SET position = 0"))
        conn.execute(text("VACUUM outbox"))
        conn.execute(text("VACUUM delivery_cursors"))
    engine.dispose()


def _connect(url: str, relaxed: bool) -> psycopg.Connection[Any]:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg.connect(conninfo)
    if relaxed:
        conn.execute("SET synchronous_commit = off")
        conn.commit()
    return conn


def floor(url: str, events: int, batch: int, *, relaxed: bool) -> tuple[float, float]:
    """Rows/s for the outbox rows claimed with SKIP LOCKED in id order and marked done by a bare SQL loop.

    ``relaxed`` commits without waiting for the WAL flush, as the workers do for delivery state.
    """
    reset_outbox(url)
    with _connect(url, relaxed) as conn:
        return timed_loop(conn, events, lambda: _claim_and_mark(conn, batch))


def _claim_and_mark(conn: psycopg.Connection[Any], batch: int, table: str = "outbox", where: str = "",
                    order: str = "id", args: tuple[Any, ...] = ()) -> int:
    """One transaction: up to ``batch`` pending rows claimed with SKIP LOCKED, then marked delivered."""
    with conn.transaction():
        ids = [r[0] for r in conn.execute(
            f"SELECT id FROM {table} WHERE status = 'pending' {where} ORDER BY {order} LIMIT %s "
            "FOR UPDATE SKIP LOCKED", (*args, batch))]
        if ids:
            conn.execute(f"UPDATE {table} SET status = 'delivered' WHERE id = ANY(%s)", (ids,))
    return len(ids)


def lane_by_lane(step: Callable[[int], int]) -> Callable[[], int]:
    """A loop step taking the lanes in turn: ``step(lane)`` until it finds nothing, then the next lane."""
    lanes = iter(range(OUTBOX_LANES))
    current = [next(lanes)]

    def run() -> int:
        while True:
            n = step(current[0])
            if n:
                return n
            nxt = next(lanes, None)
            if nxt is None:
                return 0
            current[0] = nxt

    return run


def lane_floor(url: str, events: int, batch: int) -> tuple[float, float]:
    """Rows/s for the same outbox rows claimed lane by lane, in the order the workers read them, and marked."""
    reset_outbox(url)
    with _connect(url, True) as conn:
        return timed_loop(conn, events, lane_by_lane(
            lambda lane: _claim_and_mark(conn, batch, where="AND lane = %s", args=(lane,))))


def row_floor(url: str, events: int, batch: int) -> tuple[float, float]:
    """Rows/s for one delivery row per event (as the design before lanes routed them) claimed and marked done.

    The floor the targets were first set against, measured in the same run for comparison: the rows are
    made from the outbox first (not timed), then claimed with SKIP LOCKED and marked delivered by a bare SQL
    loop committing as the workers do, then removed.
    """
    reset_outbox(url)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(
            "INSERT INTO deliveries (outbox_id, event_id, target, ordering_key, generation, status, attempts, "
            "next_attempt_at, created_at, updated_at) SELECT id, event_id, 'bench', ordering_key, 0, 'pending', 0, "
            "now(), now(), now() FROM outbox"))
        conn.execute(text("VACUUM ANALYZE deliveries"))
    try:
        with _connect(url, True) as conn:
            return timed_loop(conn, events, lambda: _claim_and_mark(
                conn, batch, table="deliveries", where="AND target = 'bench'", order="outbox_id"))
    finally:
        with engine.connect() as conn:
            # TRUNCATE, not DELETE: a DELETE checks every row against the unindexed replay_of reference
            # (quadratic: over 9 minutes for 100,000 rows).
            conn.execute(text("TRUNCATE deliveries, delivery_history"))
        engine.dispose()


# The bare cursor loop: the events of a lane after its cursor read (the whole rows), the cursor moved past
# them; no lease, no Python beyond the loop. For reading the figures: what the lanes cost the database.
def cursor_floor(url: str, events: int, batch: int) -> tuple[float, float]:
    """Rows/s for the same outbox rows read lane by lane behind a cursor that moves per batch."""
    reset_outbox(url)
    with _connect(url, True) as conn:
        conn.autocommit = True
        return timed_loop(conn, events, lane_by_lane(lambda lane: len(conn.execute(
            "WITH e AS (SELECT o.* FROM outbox AS o, delivery_cursors AS c WHERE c.target = 'bench' "
            "AND c.lane = %s AND o.lane = c.lane AND o.id > c.position ORDER BY o.id LIMIT %s), "
            "u AS (UPDATE delivery_cursors SET position = (SELECT max(id) FROM e) "
            "WHERE target = 'bench' AND lane = %s AND EXISTS (SELECT 1 FROM e)) "
            "SELECT id, payload FROM e", (lane, batch, lane)).fetchall())))


def timed_loop(conn: psycopg.Connection[Any], events: int, step: Callable[[], int]) -> tuple[float, float]:
    """Run ``step`` (one batch claimed and marked; returns its rows) until it finds none: rows/s and CPU us/row."""
    done = 0
    cpu_before = backend_cpu(conn) + time.process_time()
    started = time.perf_counter()
    while n := step():
        done += n
    elapsed = time.perf_counter() - started
    cpu = backend_cpu(conn) + time.process_time() - cpu_before
    assert done == events, (done, events)
    return done / elapsed, cpu / done * 1e6


def backend_cpu(conn: psycopg.Connection[Any]) -> float:
    """CPU seconds used so far by the PostgreSQL backend serving ``conn`` (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Run 1 worker, 3 workers and the floors ``--repeat`` times, interleaved; print medians and ratios.

    The machine is shared: runs are interleaved so that a change of load falls on every figure alike, and the
    medians are compared. CPU per event (workers and PostgreSQL backends) does not depend on the load.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--target", choices=("noop", "http"), default="noop")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every run (medians are reported)")
    parser.add_argument("--pg", default=os.environ.get("CAREHUB_TEST_DATABASE_URL",
                                                       "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--entity-types", default="",
                        help="subscribe the target to these entity types only, comma-separated (the events are "
                             "Person), as the shipped subscriptions name theirs; default: every type")
    parser.add_argument("--name", default="delivery",
                        help="part of the bench database's name (carehub_bench_<name>_<random>)")
    args = parser.parse_args()
    types = [t for t in args.entity_types.split(",") if t]

    base = make_url(normalise_url(args.pg))
    name = f"carehub_bench_{args.name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    sim = CountingTarget(discard=True).start() if args.target == "http" else None
    target: dict[str, object] = (
        {"adapter": "adapters.http_target:HttpTarget", "options": {"url": sim.url}} if sim
        else {"adapter": "adapters.noop_target:NoopTarget"})
    runs: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("one", "three", "durable", "relaxed", "lanes", "cursor", "rows")}
    busy: list[float] = []
    load = [os.getloadavg()]
    try:
        store = Store(url)
        upgrade(store.engine)
        store.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeat):
                rate, cpu, cores = run_workers(url, 1, args.events, args.batch, target, Path(tmp), types)
                runs["one"].append((rate, cpu))
                busy.append(cores)
                rate, cpu, _ = run_workers(url, 3, args.events, args.batch, target, Path(tmp), types)
                runs["three"].append((rate, cpu))
                runs["durable"].append(floor(url, args.events, args.batch, relaxed=False))
                runs["relaxed"].append(floor(url, args.events, args.batch, relaxed=True))
                runs["lanes"].append(lane_floor(url, args.events, args.batch))
                runs["cursor"].append(cursor_floor(url, args.events, args.batch))
                runs["rows"].append(row_floor(url, args.events, args.batch))
                load.append(os.getloadavg())
    finally:
        if sim:
            sim.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    def med(key: str) -> tuple[float, float]:
        return statistics.median(r for r, _ in runs[key]), statistics.median(c for _, c in runs[key])

    def each(key: str) -> str:
        return ", ".join(f"{r:,.0f}" for r, _ in runs[key])

    (one, one_cpu), (three, three_cpu) = med("one"), med("three")
    floors = {k: med(k) for k in ("durable", "relaxed", "lanes")}
    bare, bare_cpu = max(floors.values())
    cursor, cursor_cpu = med("cursor")
    rows, rows_cpu = med("rows")
    cores = os.cpu_count() or 1
    ceiling = cores / statistics.median(busy)
    print(f"delivery to a {args.target} target, {args.events} events, batches of {args.batch}, PostgreSQL, "
          f"medians of {args.repeat} interleaved rounds (each round's figure in brackets)")
    print(f"  1 worker : {one:10,.0f} events/s end to end  {one_cpu:5.0f} us CPU/event  [{each('one')}]")
    print(f"  3 workers: {three:10,.0f} events/s end to end  {three_cpu:5.0f} us CPU/event  [{each('three')}]")
    labels = {"durable": "claimed (SKIP LOCKED) in id order and marked done by a bare SQL loop",
              "relaxed": "the same, synchronous_commit off as the workers commit",
              "lanes": "the same, lane by lane in the order the workers read them"}
    for i, (key, label) in enumerate(labels.items()):
        rate, cpu = floors[key]
        lead, what = ("  floor    :", f"the outbox rows {label}") if i == 0 else ("            ", label)
        print(f"{lead} {rate:10,.0f} rows/s  {cpu:5.0f} us CPU/row: {what}  [{each(key)}]")
    print(f"             {cursor:10,.0f} rows/s  {cursor_cpu:5.0f} us CPU/row: read lane by lane behind a cursor "
          f"(no claim per row, no Python), for reading, not a target  [{each('cursor')}]")
    print(f"             {rows:10,.0f} rows/s  {rows_cpu:5.0f} us CPU/row: one delivery row per event claimed and "
          f"marked done (the floor before lanes), for comparison  [{each('rows')}]")
    print(f"  ceiling  : {cores} cores / {statistics.median(busy):.2f} cores busy in the 1-worker run = "
          f"{ceiling:.2f}x: the most any number of workers could multiply one worker here  ["
          + ", ".join(f"{cores / b:.2f}x" for b in busy) + "]")
    speedup, share = three / one, one / bare
    print(f"  3 workers / 1 worker = {speedup:.2f}x (target >= {SPEEDUP_TARGET:.1f}x): "
          f"{'met' if speedup >= SPEEDUP_TARGET else 'NOT met'}; rounds: "
          + ", ".join(f"{t / o:.2f}x" for (o, _), (t, _) in zip(runs["one"], runs["three"], strict=True)))
    print(f"  1 worker / floor     = {share:.0%} of the fastest floor (target >= {FLOOR_SHARE_TARGET:.0%}): "
          f"{'met' if share >= FLOOR_SHARE_TARGET else 'NOT met'}; by CPU per event: {bare_cpu / one_cpu:.0%}; "
          f"of the bare cursor loop: {one / cursor:.0%}; of the floor before lanes: {one / rows:.0%}")
    print("  load average (1, 5, 15 min) at the start and after each round: "
          + "; ".join(" ".join(f"{x:.2f}" for x in la) for la in load))

if __name__ == "__main__":
    main()
