"""A worker process (`carehub worker`): delivery loops plus the scheduler while this node leads.

On PostgreSQL run as many as you like, on as many machines: they share the
delivery queue (SKIP LOCKED) and exactly one runs the scheduler. On SQLite one
worker takes a lease on the store and a second one is refused with a clear
message. SIGTERM (or Ctrl-C) stops the node gracefully: each loop finishes and
records the batch it is pushing, the scheduler waits for a running job, the
lead and the lease are given up.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from datetime import timedelta
from types import FrameType

from sqlalchemy.exc import DBAPIError, IntegrityError

from hub.delivery.config import DeliveryConfig, ScheduleConfig
from hub.delivery.worker import DeliveryLoop, ensure_circuits
from hub.errors import ConfigError, Conflict
from hub.runtime import settle
from hub.scheduler import Leadership, build_scheduler
from hub.settings import Settings
from hub.store.db import Store, is_sqlite
from hub.store.delivery import SQLITE_WORKER_LEASE, Lease
from hub.store.tables import utcnow

log = logging.getLogger("carehub.worker")


def node_name() -> str:
    """This process's name in leases, claims and job runs: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def take_sqlite_lease(store: Store, node: str, seconds: float) -> None:
    """Become the one worker of a SQLite store, or raise Conflict naming the worker that already is."""
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    try:
        with store.session() as session:
            lease = session.get(Lease, SQLITE_WORKER_LEASE)
            if lease is not None and lease.holder != node and lease.expires_at > now:
                raise Conflict(
                    f"another carehub worker ({lease.holder}) is running on this SQLite store "
                    f"(last heartbeat {lease.heartbeat_at:%H:%M:%S} UTC). SQLite allows one worker: stop that one, "
                    f"or move the store to PostgreSQL to run several. If it was killed, its lease ends at "
                    f"{lease.expires_at:%H:%M:%S} UTC."
                )
            if lease is None:
                session.add(Lease(name=SQLITE_WORKER_LEASE, holder=node, acquired_at=now, heartbeat_at=now,
                                  expires_at=expires))
            else:
                lease.holder, lease.acquired_at, lease.heartbeat_at, lease.expires_at = node, now, now, expires
    except IntegrityError as exc:
        raise Conflict("another carehub worker took this SQLite store at the same moment; "
                       "SQLite allows one worker") from exc


def renew_sqlite_lease(store: Store, node: str, seconds: float) -> bool:
    """Extend our SQLite lease; False if another worker holds it now."""
    now = utcnow()
    with store.session() as session:
        lease = session.get(Lease, SQLITE_WORKER_LEASE)
        if lease is None or lease.holder != node:
            return False
        lease.heartbeat_at, lease.expires_at = now, now + timedelta(seconds=seconds)
        return True


def drop_sqlite_lease(store: Store, node: str) -> None:
    """Give the SQLite store back on shutdown, so the next worker may start at once."""
    with store.session() as session:
        lease = session.get(Lease, SQLITE_WORKER_LEASE)
        if lease is not None and lease.holder == node:
            session.delete(lease)


class WorkerNode:
    """The delivery loops and the (leader-only) scheduler of one `carehub worker` process."""

    def __init__(self, store: Store, settings: Settings, delivery: DeliveryConfig, schedule: ScheduleConfig,
                 *, threads: int = 1, run_scheduler: bool = True) -> None:
        self.store = store
        self.settings = settings
        self.delivery = delivery
        self.schedule = schedule
        self.sqlite = is_sqlite(store.engine)
        if self.sqlite and threads != 1:
            raise ConfigError("SQLite allows one delivery loop; use PostgreSQL for --threads above 1")
        if settings.worker.leader_check_seconds * 2 > settings.worker.takeover_seconds:
            raise ConfigError("worker.leader_check_seconds must be at most half of worker.takeover_seconds")
        self.threads = threads
        self.run_scheduler = run_scheduler
        self.node = node_name()
        self.stop = threading.Event()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("node %s: %s received, finishing the batches under way", self.node, signal.Signals(signum).name)
        self.stop.set()

    def run(self) -> None:
        """Run until SIGTERM/SIGINT (or ``stop``); prints one 'ready' line once delivering."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        lease_seconds = self.settings.worker.sqlite_lease_seconds
        if self.sqlite:
            take_sqlite_lease(self.store, self.node, lease_seconds)
        ensure_circuits(self.store, self.delivery.enabled_targets())
        # Everything made so far (modules, settings, adapters) lives as long as the worker: out of the
        # collector's way, so a full collection no longer walks hundreds of thousands of objects that can
        # never be garbage (it stalled the delivery loops: hub.runtime).
        settle()
        loops = [DeliveryLoop(self.store, self.settings, self.delivery, f"{self.node}/{i}", self.stop)
                 for i in range(self.threads)]
        workers = [threading.Thread(target=loop.run, name=f"delivery-{i}", daemon=True)
                   for i, loop in enumerate(loops)]
        for t in workers:
            t.start()
        scheduler = build_scheduler(self.store, self.settings, self.schedule, self.node) if (
            self.run_scheduler) else None
        leadership = Leadership(self.store, self.settings, self.node)
        print(f"worker {self.node} ready: {self.threads} delivery loop(s), targets "
              f"{', '.join(self.delivery.enabled_targets()) or 'none'}, store {self.store.engine.dialect.name}",
              flush=True)
        leading = False
        try:
            while not self.stop.is_set():
                if self.sqlite:
                    try:
                        if not renew_sqlite_lease(self.store, self.node, lease_seconds):
                            log.error("node %s: the SQLite worker lease was taken over; stopping", self.node)
                            self.stop.set()
                            break
                    except DBAPIError as exc:
                        log.warning("lease not renewed: %s", type(exc.orig).__name__)
                if scheduler is not None:
                    now_leading = leadership.check()
                    if now_leading and not leading:
                        scheduler.resume()
                    elif leading and not now_leading:
                        scheduler.pause()
                    leading = now_leading
                self.stop.wait(self.settings.worker.leader_check_seconds)
        finally:
            self.stop.set()
            for t in workers:
                t.join()
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            leadership.release()
            for loop in loops:
                loop.close()
            if self.sqlite:
                drop_sqlite_lease(self.store, self.node)
            delivered = sum(loop.delivered for loop in loops)
            print(f"worker {self.node} stopped: {delivered} delivered", flush=True)
