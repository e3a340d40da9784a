"""Benchmark: change events delivered end to end by 1 and by 3 `carehub worker` processes on PostgreSQL.

Each run starts the workers on a fresh store, waits until they are ready, then
commits N outbox events (5 per person) in one transaction and times from that
commit until the last delivery is recorded as delivered (its ``delivered_at``):
routing, claiming in order (SKIP LOCKED), the push and the outcome. Beside it,
the floor: the same delivery rows claimed (``SELECT ... FOR UPDATE SKIP
LOCKED``) and marked done by a bare SQL loop on one connection, in batches of
the same size, committing as usual and, as the workers do, without waiting for
the WAL flush (the faster of the two is the target's floor); and, for reading
the figures, the same rows claimed as the workers claim them (head of key,
lease). Each figure comes with the CPU time per event of the workers and their
PostgreSQL backends, which does not depend on what else the machine runs.

Targets: 3 workers >= 2x one worker; one worker >= 30% of the floor.

    python bench/delivery.py [--events 20000] [--batch 200] [--target noop|http] [--repeat 3]
                             [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

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
from sqlalchemy import create_engine, exists, func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.simulators.counting_target import CountingTarget  # noqa: E402
from hub.settings import WorkerSettings  # noqa: E402
from hub.store.db import Store, normalise_url  # noqa: E402
from hub.store.delivery import Delivery  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.schema import Base  # noqa: E402
from hub.store.tables import OutboxEvent, utcnow  # noqa: E402
from tests.delivery.helpers import add_events, start_worker, write_toml  # noqa: E402

SPEEDUP_TARGET = 2.0
FLOOR_SHARE_TARGET = 0.30


def reset(url: str) -> None:
    """Empty every table of the bench database."""
    engine = create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def all_delivered(store: Store) -> bool:
    """True once every outbox event is routed and no delivery is left undelivered.

    Two index probes (the outbox's status index, the partial index of unsettled
    deliveries), so polling costs the workers next to nothing; a count(*) of the
    deliveries every few milliseconds would take CPU from the very processes
    being measured.
    """
    with store.session() as s:
        return not s.scalar(select(
            exists().where(OutboxEvent.status == "pending") | exists().where(Delivery.status != "delivered")))


def timeline(store: Store) -> tuple[int, datetime, datetime, datetime]:
    """Deliveries delivered; when the first and the last were recorded; when the last was routed."""
    with store.session() as s:
        n, first, last, routed = s.execute(
            select(func.count(), func.min(Delivery.delivered_at), func.max(Delivery.delivered_at),
                   func.max(Delivery.created_at)).where(Delivery.status == "delivered")).one()
    assert first is not None and last is not None and routed is not None, "nothing was delivered"
    return int(n), first, last, routed


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
                tmp: Path, fan_out_batch: int) -> tuple[float, float]:
    """Events/s delivered end to end by ``workers`` worker processes, and CPU microseconds per event."""
    reset(url)
    subscriptions = write_toml(tmp / "subscriptions.toml", {
        "targets": {"bench": {**target, "batch_size": batch, "timeout_seconds": 30}},
        "subscriptions": [{"target": "bench"}],
    })
    schedules = write_toml(tmp / "schedules.toml", {"jobs": {}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    env.update({
        "CAREHUB_DATABASE_URL": url, "CAREHUB_SUBSCRIPTIONS_FILE": str(subscriptions),
        "CAREHUB_SCHEDULES_FILE": str(schedules), "CAREHUB_SOURCES": "{}", "CAREHUB_LOG_LEVEL": "WARNING",
        "CAREHUB_WORKER__POLL_SECONDS": "0.02", "CAREHUB_WORKER__FAN_OUT_SECONDS": "0.1",
        "CAREHUB_WORKER__FAN_OUT_BATCH": str(fan_out_batch),
    })
    procs: list[subprocess.Popen[bytes]] = []
    store = Store(url)
    try:
        procs = [start_worker(env, tmp / f"worker{workers}-{i}.log") for i in range(workers)]
        add_events(store, events // 5, 5)  # one transaction: the events appear together at its commit
        committed = utcnow()
        cpu_before = cpu_seconds(url, [p.pid for p in procs])  # the workers' CPU, not the events' insert
        while not all_delivered(store):
            time.sleep(0.05)
        cpu = cpu_seconds(url, [p.pid for p in procs]) - cpu_before
        # The end is when the last delivery was recorded (the workers' clock is this machine's clock),
        # not when this loop happened to look.
        n, first, last, routed = timeline(store)
        assert n == events, (n, events)
        elapsed = (last - committed).total_seconds()
        print(f"  {workers} worker(s): first delivery {(first - committed).total_seconds():.2f}s after the "
              f"commit, all routed at {(routed - committed).total_seconds():.2f}s, last delivery at {elapsed:.2f}s",
              flush=True)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        store.dispose()
    return events / elapsed, cpu / events * 1e6


def reset_deliveries(url: str) -> None:
    """Make the delivered rows pending again, then vacuum, so every floor starts from the same clean table."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("UPDATE deliveries SET status = 'pending', delivered_at = NULL, claim_id = NULL"))
        conn.execute(text("VACUUM deliveries"))
    engine.dispose()


def floor(url: str, events: int, batch: int, *, relaxed: bool) -> tuple[float, float]:
    """Rows/s for the same delivery rows claimed with SKIP LOCKED and marked done by a bare SQL loop.

    ``relaxed`` commits without waiting for the WAL flush, as the workers do for delivery state.
    """
    reset_deliveries(url)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        if relaxed:
            conn.execute("SET synchronous_commit = off")
            conn.commit()
        return timed_loop(conn, events, lambda: _claim_and_mark(conn, batch))


def _claim_and_mark(conn: psycopg.Connection[Any], batch: int) -> int:
    with conn.transaction():
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM deliveries WHERE target = 'bench' AND status = 'pending' "
            "ORDER BY outbox_id LIMIT %s FOR UPDATE SKIP LOCKED", (batch,))]
        if ids:
            conn.execute("UPDATE deliveries SET status = 'delivered', delivered_at = now() "
                         "WHERE id = ANY(%s)", (ids,))
    return len(ids)


# The workers' claim as a bare SQL loop: head of key only, marked in flight with a lease and a claim id (one
# statement, as the workers claim), then marked delivered: the database work of the ordering and lease
# guarantees, without routing, events, history or Python. For reading the figures, not a target.
_ORDERED_CLAIM = """
WITH picked AS (
    SELECT d.id FROM deliveries AS d
    WHERE d.target = 'bench' AND d.status IN ('pending', 'failed') AND d.next_attempt_at <= now()
      AND d.outbox_id = (
          SELECT min(CASE WHEN b.status = 'in_flight' THEN -1 ELSE b.outbox_id END) FROM deliveries AS b
          WHERE b.target = 'bench' AND b.ordering_key = d.ordering_key
            AND b.status IN ('pending', 'failed', 'in_flight', 'dead')
            AND (b.status <> 'dead' OR b.replayed_by IS NULL))
    ORDER BY d.outbox_id LIMIT %s FOR UPDATE OF d SKIP LOCKED)
UPDATE deliveries AS u SET status = 'in_flight', attempts = u.attempts + 1, claim_id = 'floor',
    claimed_by = 'floor', lease_until = now() + interval '60 seconds', updated_at = now()
FROM picked WHERE u.id = picked.id RETURNING u.id
"""


def ordered_floor(url: str, events: int, batch: int) -> tuple[float, float]:
    """Rows/s for the same rows claimed as the workers claim them and marked delivered, by a bare SQL loop."""
    reset_deliveries(url)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        return timed_loop(conn, events, lambda: _claim_ordered_and_mark(conn, batch))


def _claim_ordered_and_mark(conn: psycopg.Connection[Any], batch: int) -> int:
    ids = [r[0] for r in conn.execute(_ORDERED_CLAIM, (batch,))]
    if ids:
        conn.execute("UPDATE deliveries SET status = 'delivered', delivered_at = now(), claim_id = NULL, "
                     "lease_until = NULL WHERE id = ANY(%s) AND claim_id = 'floor'", (ids,))
    return len(ids)


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
    parser.add_argument("--fan-out-batch", type=int, default=WorkerSettings().fan_out_batch,
                        help="most outbox events routed per transaction (worker.fan_out_batch)")
    parser.add_argument("--pg", default=os.environ.get("CAREHUB_TEST_DATABASE_URL",
                                                       "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    base = make_url(normalise_url(args.pg))
    name = f"carehub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    sim = CountingTarget(discard=True).start() if args.target == "http" else None
    target: dict[str, object] = (
        {"adapter": "adapters.http_target:HttpTarget", "options": {"url": sim.url}} if sim
        else {"adapter": "adapters.noop_target:NoopTarget"})
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in ("one", "three", "durable", "relaxed", "ordered")}
    load = [os.getloadavg()]
    try:
        store = Store(url)
        upgrade(store.engine)
        store.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeat):
                runs["one"].append(run_workers(url, 1, args.events, args.batch, target, Path(tmp),
                                               args.fan_out_batch))
                runs["three"].append(run_workers(url, 3, args.events, args.batch, target, Path(tmp),
                                                 args.fan_out_batch))
                runs["durable"].append(floor(url, args.events, args.batch, relaxed=False))
                runs["relaxed"].append(floor(url, args.events, args.batch, relaxed=True))
                runs["ordered"].append(ordered_floor(url, args.events, args.batch))
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
    (durable, durable_cpu), (relaxed, relaxed_cpu), (ordered, ordered_cpu) = med("durable"), med("relaxed"), \
        med("ordered")
    bare, bare_cpu = max((durable, durable_cpu), (relaxed, relaxed_cpu))
    print(f"delivery to a {args.target} target, {args.events} events, batches of {args.batch}, PostgreSQL, "
          f"medians of {args.repeat} interleaved rounds (each round's figure in brackets)")
    print(f"  1 worker : {one:10,.0f} events/s end to end  {one_cpu:5.0f} us CPU/event  [{each('one')}]")
    print(f"  3 workers: {three:10,.0f} events/s end to end  {three_cpu:5.0f} us CPU/event  [{each('three')}]")
    print(f"  floor    : {durable:10,.0f} rows/s  {durable_cpu:5.0f} us CPU/row: claimed (SKIP LOCKED) and marked done "
          f"by a bare SQL loop  [{each('durable')}]")
    print(f"             {relaxed:10,.0f} rows/s  {relaxed_cpu:5.0f} us CPU/row: the same, synchronous_commit off as "
          f"the workers commit  [{each('relaxed')}]")
    print(f"             {ordered:10,.0f} rows/s  {ordered_cpu:5.0f} us CPU/row: claimed as the workers claim (head "
          f"of key, lease), for reading, not a target  [{each('ordered')}]")
    speedup, share = three / one, one / bare
    print(f"  3 workers / 1 worker = {speedup:.2f}x (target >= {SPEEDUP_TARGET:.1f}x): "
          f"{'met' if speedup >= SPEEDUP_TARGET else 'NOT met'}; rounds: "
          + ", ".join(f"{t / o:.2f}x" for (o, _), (t, _) in zip(runs["one"], runs["three"], strict=True)))
    print(f"  1 worker / floor     = {share:.0%} of the faster floor (target >= {FLOOR_SHARE_TARGET:.0%}): "
          f"{'met' if share >= FLOOR_SHARE_TARGET else 'NOT met'}; by CPU per event: {bare_cpu / one_cpu:.0%}; "
          f"of the floor claimed as the workers claim: {one / ordered:.0%}")
    print("  load average (1, 5, 15 min) at the start and after each round: "
          + "; ".join(" ".join(f"{x:.2f}" for x in la) for la in load))

if __name__ == "__main__":
    main()
