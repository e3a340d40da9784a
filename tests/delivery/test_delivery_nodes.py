"""`carehub worker` processes on PostgreSQL: load sharing, a killed worker, a restarted server.

Each test starts real worker processes against one PostgreSQL store and the
counting target simulator on loopback, and checks what the target applied:
every event, once, in order per person. They need PostgreSQL (several
processes sharing one store, a server restart), so they carry the ``postgres``
marker and are deselected without CAREHUB_TEST_DATABASE_URL. The restart proof
restarts a cluster it starts itself (``tests.support.postgres``), never the shared one.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.simulators.counting_target import CountingTarget
from hub.store.db import Store
from hub.store.delivery import LEADER_LEASE, DeliveryCursor, JobRun, Lease
from hub.store.migrate import upgrade
from tests.support.delivery import (
    add_events,
    assert_each_once_in_order,
    count,
    start_worker,
    target_config,
    worker_env,
)
from tests.support.postgres import PrivateCluster, empty_postgres
from tests.support.waiting import wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    empty_postgres(postgres_url)
    store = Store(postgres_url)
    yield store
    store.dispose()


@pytest.fixture
def target() -> Iterator[CountingTarget]:
    sim = CountingTarget().start()
    yield sim
    sim.release()
    sim.stop()


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def stop_gracefully(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    return [p.wait(timeout=60) for p in procs]


def delivered_by(log: Path) -> int:
    found = re.search(rb"stopped: (\d+) delivered", log.read_bytes())
    assert found, log.read_text()
    return int(found.group(1))


def leader(store: Store) -> str | None:
    with store.session() as s:
        lease = s.get(Lease, LEADER_LEASE)
        return lease.holder if lease else None


def test_three_workers_deliver_ten_thousand_events_once_in_order(
    pg_store: Store, target: CountingTarget, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    # A lease far longer than any push, so no claim is ever taken over: the target must see no duplicate at all.
    env = worker_env(pg_store.url, tmp_path, target_config(target.url, batch_size=100),
                     CAREHUB_WORKER__LEASE_SECONDS="60")
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers.extend(start_worker(env, log) for log in logs)
    # The events arrive once all three are polling: written before, the first worker up could deliver them all
    # while a busy machine was still starting the others (seen under load), and no work would be shared.
    n = add_events(pg_store, 1000, 10)
    wait_for(lambda: count(pg_store, "delivered") == n, f"{n} deliveries", timeout=300, every=0.5)
    assert stop_gracefully(workers) == [0, 0, 0]

    assert_each_once_in_order(target, n)
    assert target.stats()["duplicates"] == 0 and target.stats()["received"] == n
    shares = [delivered_by(log) for log in logs]
    # load shared, not just failover (how evenly depends on what else the two cores are doing)
    assert sum(shares) == n and sum(1 for s in shares if s > 0) >= 2, shares
    with pg_store.session() as s:
        nodes = set(s.scalars(select(JobRun.node)))
    assert len(nodes) == 1  # one scheduler leader however many workers


def test_worker_killed_mid_batch_loses_nothing_and_target_applies_each_once(
    pg_store: Store, target: CountingTarget, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    env = worker_env(pg_store.url, tmp_path, target_config(target.url, batch_size=50))
    workers.extend(start_worker(env, tmp_path / f"worker{i}.log") for i in range(3))
    wait_for(lambda: leader(pg_store) is not None, "a scheduler leader", timeout=30)
    victim_node = leader(pg_store)
    assert victim_node is not None
    victim = next(p for p in workers if victim_node.endswith(f":{p.pid}"))
    # After 20 batches the target applies what it gets but answers nothing: every worker is caught mid-push,
    # the leader among them, after its batch was applied and before it could record it.
    target.hold(after=20)
    n = add_events(pg_store, 300, 10)
    # mid-push: three pushes held unanswered are one per worker (a loop has one push out at a time, and only
    # while it holds a lane), so the leader's batch has reached the target and its lane is still leased
    wait_for(lambda: target.stats()["requests"] >= 23 and _holds_a_lane(pg_store, victim_node),
             "the leader to be mid-push", timeout=60)
    applied_before_kill = target.stats()["applied"]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    target.release()
    # the killed leader's lock is freed with its socket; takeover_seconds (3 s here) bounds it otherwise
    wait_for(lambda: leader(pg_store) not in (None, victim_node), "another worker to lead", timeout=10)

    wait_for(lambda: count(pg_store, "delivered") == n, f"{n} deliveries", timeout=180, every=0.5)
    survivors = [p for p in workers if p is not victim]
    assert stop_gracefully(survivors) == [0, 0]

    assert 0 < applied_before_kill < n
    assert_each_once_in_order(target, n)
    assert target.stats()["duplicates"] > 0  # the killed batch was sent again and recognised by its keys
    with pg_store.session() as s:  # the lane the leader held was taken over after its lease, and counted
        lost = s.scalar(select(func.sum(DeliveryCursor.times_lost)).where(
            DeliveryCursor.lost_by.like(f"{victim_node}/%")))
        new_leader_jobs = s.scalar(select(func.count()).select_from(JobRun).where(JobRun.node != victim_node))
    assert lost and lost > 0
    assert new_leader_jobs and new_leader_jobs > 0


def _holds_a_lane(store: Store, node: str) -> bool:
    with store.session() as s:
        return bool(s.scalar(select(func.count()).select_from(DeliveryCursor).where(
            DeliveryCursor.holder.like(f"{node}/%"))))


@pytest.fixture
def private_store() -> Iterator[tuple[PrivateCluster, Store]]:
    """A migrated store on a PostgreSQL cluster of this test's own (temporary directory, free port), which the
    test may restart: the machine's shared server is never touched."""
    cluster = PrivateCluster().start()
    try:
        store = Store(cluster.url)
        upgrade(store.engine)
        yield cluster, store
        store.dispose()
    finally:
        cluster.stop()


def test_postgres_restarted_mid_run_workers_reconnect_and_finish(
    private_store: tuple[PrivateCluster, Store], target: CountingTarget, workers: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    cluster, store = private_store
    n = add_events(store, 300, 10)
    env = worker_env(store.url, tmp_path, target_config(target.url, batch_size=25))
    workers.extend(start_worker(env, tmp_path / f"worker{i}.log") for i in range(2))
    wait_for(lambda: count(store, "delivered") >= n // 4, "a quarter", timeout=120)
    cluster.restart()
    wait_for(cluster.ready, "PostgreSQL to answer again", timeout=60)
    assert all(p.poll() is None for p in workers), "a worker died with the database"
    wait_for(lambda: _quietly(lambda: count(store, "delivered")) == n, f"{n} deliveries", timeout=180, every=0.5)
    assert stop_gracefully(workers) == [0, 0]
    assert_each_once_in_order(target, n)


def _quietly(read: object) -> int:
    """A count that treats a connection the restart just broke as 'not yet'."""
    from sqlalchemy.exc import DBAPIError

    try:
        return int(read())  # type: ignore[operator]
    except DBAPIError:
        return -1
