"""The SQLite path end to end: a sync through the real pipeline, one `carehub worker`, operators at the CLI.

A second worker on the same SQLite store is refused with a clear message; a
dead letter is replayed from the command line after the fix and reaches the
target once; `carehub status` shows deliveries and the scheduler's job runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.simulators.counting_target import CountingTarget
from hub.pipeline import Pipeline
from hub.store.db import Store
from hub.store.migrate import upgrade
from hub.store.tables import OutboxEvent
from hub.sync import sync_source
from tests.support.delivery import (
    CARHUB,
    assert_each_once_in_order,
    count,
    start_worker,
    target_config,
    worker_env,
)
from tests.support.pipeline import tiny_adapter
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # one of the suite's longest (make test runs it)


def carehub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CARHUB, *args], env=env, capture_output=True, text=True, timeout=120)


def test_one_sqlite_worker_delivers_a_sync_and_operators_replay_a_dead_letter(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    store = Store(url)
    upgrade(store.engine)
    sync_source(store, tiny_adapter(tmp_path), Pipeline(), batch_size=3)
    with store.session() as s:
        events = s.execute(select(OutboxEvent.entity_type, OutboxEvent.entity_id, OutboxEvent.version)).all()
    n = len(events)
    episode = next(e for e in events if e.entity_type == "Episode")
    target = CountingTarget().start()
    target.fail_keys([f"{episode.entity_id}:{episode.version}"], "no such team code in the adults' system")
    env = worker_env(url, tmp_path, target_config(target.url))
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        wait_for(lambda: count(store, "delivered") == n - 1 and count(store, "dead") == 1, "all but one", timeout=60)

        second = carehub(env, "worker")
        assert second.returncode == 2
        assert "SQLite allows one worker" in second.stderr and "another carehub worker" in second.stderr

        dead = json.loads(carehub(env, "deliveries", "list", "--status", "dead", "--json").stdout)
        assert len(dead) == 1 and "no such team code" in dead[0]["last_error"]
        target.heal()
        retried = carehub(env, "deliveries", "retry", str(dead[0]["id"]), "--as", "alice")
        assert retried.returncode == 0, retried.stderr
        wait_for(lambda: count(store, "delivered") == n, "the replay", timeout=60)
        shown = json.loads(carehub(env, "deliveries", "show", str(dead[0]["id"])).stdout)
        assert shown["replayed_by"] and shown["history"][-1]["actor"] == "cli:alice"
        assert_each_once_in_order(target, n)

        wait_for(lambda: "requeue_lost_deliveries" in json.loads(carehub(env, "status", "--json").stdout)["jobs"],
                 "a recorded job run", timeout=30)
        status = json.loads(carehub(env, "status", "--json").stdout)
        assert status["deliveries"]["counting"]["delivered"] == n
        assert status["deliveries"]["counting"]["dead"] == 1  # the original, kept with its history
        assert status["jobs"]["requeue_lost_deliveries"]["outcome"] == "succeeded"
        assert status["jobs"]["requeue_lost_deliveries"]["node"].endswith(f":{worker.pid}")
        assert status["outbox"] == {"pending": 0, "delivered": n, "dead": 0}  # the dead one was replayed
        assert {"sources", "canonical", "outbox"} <= status.keys()
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        target.stop()
        store.dispose()
    assert b"stopped:" in (tmp_path / "worker.log").read_bytes()
    # the lease was given back: a new worker may start at once
    again = start_worker(env, tmp_path / "again.log")
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=60) == 0
