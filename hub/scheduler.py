"""The scheduler: APScheduler 3 jobs from ``config/schedules.toml``, run by exactly one worker.

Each job is a callable named by import path and called with a
:class:`JobContext`; every run is recorded in ``job_runs`` (node, start, end,
duration, outcome, error, what it counted) and shown by ``carehub status``.

Exactly one worker runs the jobs, however many run: the *leader*. On
PostgreSQL the leader is whoever holds a session-level advisory lock on a
dedicated connection; that connection heartbeats every
``worker.leader_check_seconds`` and carries ``idle_session_timeout =
worker.takeover_seconds``, so if the leader dies, hangs or loses its machine the
server ends its session, the lock is free, and another worker takes over
within about ``takeover_seconds``. On SQLite there is one worker, which leads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, create_engine, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from hub.delivery.config import JobSettings, ScheduleConfig
from hub.errors import ConfigError, HubError
from hub.registry import build_pipeline, enabled_sources, load_adapter, load_object
from hub.settings import Settings
from hub.store.db import Store, is_sqlite
from hub.store.delivery import LEADER_LEASE, JobRun, Lease
from hub.store.tables import utcnow
from hub.sync import sync_source

log = logging.getLogger("carehub.scheduler")

# An arbitrary constant naming the scheduler-leader lock among PostgreSQL advisory locks.
LEADER_LOCK = 0x43480003


@dataclass
class JobContext:
    """What a scheduled job is given: the store, the settings, its own options and the node running it."""

    store: Store
    settings: Settings
    job: str
    node: str
    options: dict[str, Any] = field(default_factory=dict)


Job = Callable[[JobContext], dict[str, Any] | None]


def run_recorded(job: Job, ctx: JobContext) -> None:
    """Run one job and record it in ``job_runs``; a failing job is recorded, never raised to the scheduler."""
    started = utcnow()
    clock = time.monotonic()
    try:
        with ctx.store.session() as session:
            run = JobRun(job=ctx.job, node=ctx.node, started_at=started, outcome="running", detail={})
            session.add(run)
            session.flush()
            run_id = run.id
    except DBAPIError as exc:
        log.warning("job %s not run: store unavailable (%s)", ctx.job, type(exc.orig).__name__)
        return
    outcome, error, detail = "succeeded", None, {}
    try:
        detail = job(ctx) or {}
    except Exception as exc:  # a job's failure of any kind is recorded; the scheduler goes on
        outcome, error = "failed", f"{type(exc).__name__}: {exc}"
        log.warning("job %s failed: %s", ctx.job, error)
    duration_ms = int((time.monotonic() - clock) * 1000)
    try:
        with ctx.store.session() as session:
            session.execute(update(JobRun).where(JobRun.id == run_id).values(
                finished_at=utcnow(), duration_ms=duration_ms, outcome=outcome, error=error, detail=detail))
    except DBAPIError as exc:
        log.warning("job %s: outcome not recorded (%s)", ctx.job, type(exc.orig).__name__)


def poll_sources(ctx: JobContext) -> dict[str, Any]:
    """Sync every enabled source (``hub.sync.sync_source``); one failing source does not stop the others."""
    settings = ctx.settings
    pipeline = build_pipeline(settings, ctx.store)
    counts: dict[str, Any] = {}
    failed: list[str] = []
    for name in ctx.options.get("sources") or enabled_sources(settings):
        adapter = load_adapter(settings, name)
        try:
            result = sync_source(ctx.store, adapter, pipeline, batch_size=settings.sources[name].batch_size)
            counts[name] = result.as_dict()
        except HubError as exc:
            counts[name] = {"error": str(exc)}
            failed.append(name)
        finally:
            adapter.close()
    if failed:
        raise HubError(f"sources failed: {', '.join(failed)}")
    return counts


def _trigger(spec: JobSettings) -> IntervalTrigger | CronTrigger:
    if spec.cron is not None:
        try:
            return CronTrigger.from_crontab(spec.cron, timezone=UTC)
        except ValueError as exc:
            raise ConfigError(f"job cron {spec.cron!r}: {exc}") from exc
    assert spec.every_seconds is not None
    return IntervalTrigger(seconds=spec.every_seconds, timezone=UTC)


def build_scheduler(store: Store, settings: Settings, schedule: ScheduleConfig, node: str) -> BackgroundScheduler:
    """A paused scheduler holding every enabled job; resume it only while leader."""
    scheduler = BackgroundScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
    for name, spec in schedule.jobs.items():
        if not spec.enabled:
            continue
        job: Job = load_object(spec.call)
        ctx = JobContext(store=store, settings=settings, job=name, node=node, options=dict(spec.options))
        scheduler.add_job(run_recorded, _trigger(spec), args=[job, ctx], id=name, name=name,
                          next_run_time=datetime.now(UTC) if spec.every_seconds else None)
    scheduler.start(paused=True)
    return scheduler


class Leadership:
    """Whether this worker leads the scheduler: a PostgreSQL advisory lock, or the SQLite worker's lease."""

    def __init__(self, store: Store, settings: Settings, node: str) -> None:
        self.store = store
        self.settings = settings
        self.node = node
        self.sqlite = is_sqlite(store.engine)
        self.conn: Connection | None = None
        self.held = False
        self._engine = None if self.sqlite else create_engine(
            store.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    def check(self) -> bool:
        """Try to become leader, or confirm we still are; False when the store cannot be reached."""
        if self.sqlite:
            self.held = True  # the SQLite worker's lease (hub.delivery.node) already makes it the only one
            return True
        try:
            if self.conn is None:
                assert self._engine is not None
                self.conn = self._engine.connect()
                timeout_ms = int(self.settings.worker.takeover_seconds * 1000)
                self.conn.execute(text(f"SET idle_session_timeout = {timeout_ms}"))
            if self.held:
                self.conn.execute(text("SELECT 1"))
            else:
                self.held = bool(self.conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK}))
                if self.held:
                    log.info("node %s is now the scheduler leader", self.node)
            if self.held:
                self._heartbeat()
        except DBAPIError as exc:
            if self.held:
                log.warning("node %s lost the scheduler lead (%s)", self.node, type(exc.orig).__name__)
            self._drop()
        return self.held

    def _heartbeat(self) -> None:
        now = utcnow()
        expires = now + timedelta(seconds=self.settings.worker.takeover_seconds)
        with self.store.session() as session:
            lease = session.get(Lease, LEADER_LEASE, with_for_update=True)
            if lease is None:
                session.add(Lease(name=LEADER_LEASE, holder=self.node, acquired_at=now, heartbeat_at=now,
                                  expires_at=expires))
            else:
                if lease.holder != self.node:
                    lease.holder, lease.acquired_at = self.node, now
                lease.heartbeat_at, lease.expires_at = now, expires

    def _drop(self) -> None:
        self.held = False
        if self.conn is not None:
            try:
                self.conn.close()
            except DBAPIError:
                log.debug("leader connection already gone")
            self.conn = None

    def release(self) -> None:
        """Give the lead up (on shutdown), so another worker takes over at once."""
        if self.conn is not None and self.held:
            try:
                self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK})
            except DBAPIError:
                log.debug("leader connection already gone")
        self._drop()
        if self._engine is not None:
            self._engine.dispose()
