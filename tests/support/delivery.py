"""Shared pieces of the delivery tests: outbox events in bulk, configs, the worker subprocess, driving an
in-process delivery loop until it is done."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from adapters.simulators.counting_target import CountingTarget
from hub.delivery.config import DeliveryConfig
from hub.delivery.worker import DeliveryLoop
from hub.pipeline import ID_NAMESPACE, event_id_for
from hub.settings import Settings, WorkerSettings
from hub.status import delivery_status
from hub.store.db import Store
from hub.store.tables import utcnow
from hub.store.writer import NewEvent, append_events
from tests.support.waiting import wait_for

CARHUB = [sys.executable, "-m", "hub"]


def person_id(n: int) -> str:
    """A stable synthetic person id."""
    return str(uuid.uuid5(ID_NAMESPACE, f"test-person/{n}"))


def add_events(store: Store, people: int, per_person: int, *, start_version: int = 1) -> int:
    """Write ``people * per_person`` outbox events, interleaving people; returns how many.

    Each person gets successive versions of their Person entity, so each event's
    idempotency key (entity id and version) is distinct.
    """
    now = utcnow()
    rows: list[NewEvent] = []
    for v in range(start_version, start_version + per_person):
        for p in range(people):
            pid = person_id(p)
            kind = "created" if v == 1 else "updated"
            rows.append(NewEvent(event_id_for(pid, v, kind), "Person", pid, pid, kind, v, pid, "test", now,
                                 orjson.dumps({"id": pid, "version": v})))
    with store.session() as session:  # through the writer, as every producer of events
        append_events(session, rows)
    return len(rows)


def target_config(url: str, **target: Any) -> dict[str, Any]:
    """A subscriptions document with one HTTP target named 'counting' taking every event."""
    settings: dict[str, Any] = {
        "adapter": "adapters.http_target:HttpTarget", "batch_size": 50, "timeout_seconds": 5,
        "options": {"url": url},
        "retry": {"max_attempts": 50, "base_seconds": 0.05, "max_seconds": 0.5},
        "circuit": {"failure_threshold": 3, "cooldown_seconds": 0.5},
    }
    for key, value in target.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    return {"targets": {"counting": settings}, "subscriptions": [{"target": "counting"}]}


def delivery_config(url: str, **target: Any) -> DeliveryConfig:
    """The typed form of :func:`target_config`."""
    return DeliveryConfig.model_validate(target_config(url, **target))


def hub_settings(database_url: str, **worker: Any) -> Settings:
    """Settings on a test's store with quick worker pacing."""
    pacing = {"poll_seconds": 0.05, "lease_seconds": 5, "leader_check_seconds": 0.5,
              "takeover_seconds": 3, **worker}
    return Settings(database_url=database_url, worker=WorkerSettings(**pacing), sources={})


def toml_value(value: Any) -> str:
    """A value in TOML syntax (enough for these configs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def write_toml(path: Path, doc: dict[str, Any]) -> Path:
    """Write a two-level document (tables of tables, arrays of tables) as TOML."""
    lines: list[str] = []

    def table(prefix: str, body: dict[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if not isinstance(v, dict)}
        lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
        for k, v in body.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}", v)

    for key, value in doc.items():
        if isinstance(value, dict):
            for name, body in value.items():
                table(f"{key}.{name}", body)
        elif isinstance(value, list):
            for item in value:
                lines.append(f"[[{key}]]")
                lines.extend(f"{k} = {toml_value(v)}" for k, v in item.items())
    path.write_text("\n".join(lines) + "\n")
    return path


SCHEDULES = {"jobs": {
    "requeue_lost_deliveries": {"call": "hub.delivery.jobs:requeue_lost_deliveries", "every_seconds": 1},
}}


def worker_env(database_url: str, tmp_path: Path, subscriptions: dict[str, Any], **extra: str) -> dict[str, str]:
    """Environment for `carehub worker` subprocesses: the test's store, target and quick pacing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    env.update({
        "CAREHUB_DATABASE_URL": database_url, "CAREHUB_DATA_DIR": str(tmp_path / "var"),
        "CAREHUB_SUBSCRIPTIONS_FILE": str(write_toml(tmp_path / "subscriptions.toml", subscriptions)),
        "CAREHUB_SCHEDULES_FILE": str(write_toml(tmp_path / "schedules.toml", SCHEDULES)),
        "CAREHUB_SOURCES": "{}", "CAREHUB_LOG_LEVEL": "WARNING",
        "CAREHUB_WORKER__POLL_SECONDS": "0.05", "CAREHUB_WORKER__LEASE_SECONDS": "4",
        "CAREHUB_WORKER__LEADER_CHECK_SECONDS": "0.5",
        "CAREHUB_WORKER__TAKEOVER_SECONDS": "3",
    })
    env.update(extra)
    return env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `carehub worker` and wait for its 'ready' line."""
    out = log.open("wb")
    proc = subprocess.Popen([*CARHUB, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_for(lambda: b"ready" in log.read_bytes() or proc.poll() is not None, "worker start", timeout=60)
    if proc.poll() is not None:
        raise AssertionError(f"worker exited at start ({proc.returncode}):\n{log.read_text()}")
    return proc


def drain(loop: DeliveryLoop, done: Callable[[], bool], *, timeout: float = 60.0,
          what: Callable[[], object] | str = "delivery") -> None:
    """Run the delivery loop's passes until ``done()``, pausing only after a pass that found nothing to send
    (a retry not yet due); fail after ``timeout`` seconds naming ``what`` (or what it answers then)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what() if callable(what) else what} did not finish"
        if loop.run_once() == 0:
            time.sleep(0.02)


def count(store: Store, status: str) -> int:
    """Deliveries in ``status`` over every target, as `carehub status` counts them.

    ``delivered`` counts events delivered through the lane cursors and delivery rows delivered; the other
    statuses are those of delivery rows.
    """
    with store.session() as session:
        return sum(t[status] for t in delivery_status(session).values())


def assert_each_once_in_order(target: CountingTarget, expected: int) -> None:
    """Every event applied exactly once, and each person's events applied in outbox order."""
    stats = target.stats()
    assert stats["applied"] == expected, stats
    for key, sequences in target.applied_sequences().items():
        assert sequences == sorted(sequences), f"events of {key} applied out of order: {sequences}"
