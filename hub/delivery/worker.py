"""One delivery loop: route new outbox events, claim batches per target, push them, record what happened.

A loop holds its own target adapters (an HTTP session is not shared between
threads). The target's verdict is read by error class, never by message:
:class:`~hub.errors.RetryableError` (and any unexpected error) is transient,
:class:`~hub.errors.PermanentDeliveryError` is a dead letter at once, and a
:class:`~hub.contract.PushResult` says the same per event. A store outage
(PostgreSQL restarting) is waited out: the loop backs off and reconnects, and
claims it could not settle come back after their lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from hub.contract import ChangeEvent, PushResult, TargetAdapter
from hub.delivery import circuit
from hub.delivery.config import DeliveryConfig
from hub.delivery.fanout import fan_out, insert_new
from hub.delivery.queue import Claimed, Outcome, claim, delivery_engine, prefer_custom_plans, record_outcomes
from hub.errors import HubError, PermanentDeliveryError, RetryableError
from hub.registry import load_target
from hub.settings import Settings
from hub.store.db import Store
from hub.store.delivery import CircuitState
from hub.store.tables import utcnow

log = logging.getLogger("carehub.delivery")

SUCCESS, FAILURE, NEUTRAL = "success", "failure", "neutral"


class RateLimiter:
    """A token bucket: at most ``rate`` events a second on average, bursts up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()

    def acquire(self, n: int, stop: threading.Event) -> bool:
        """Wait until ``n`` events may go; False if asked to stop meanwhile."""
        if self.rate <= 0:
            return True
        while True:
            now = time.monotonic()
            self.tokens = min(max(self.rate, n), self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= n:
                self.tokens -= n
                return True
            if stop.wait((n - self.tokens) / self.rate):
                return False


@dataclass(frozen=True, slots=True)
class Verdict:
    """A push's outcomes per event and what it says about the target's health."""

    outcomes: list[Outcome]
    health: str


def judge(claimed: list[Claimed], push: Callable[[list[ChangeEvent]], list[PushResult]]) -> Verdict:
    """Call the target once and turn its answer (or its error) into one outcome per claimed delivery."""
    try:
        results = push([c.event for c in claimed])
    except PermanentDeliveryError as exc:
        return Verdict([Outcome(c.delivery_id, "permanent", error_class=type(exc).__name__, error=exc.message)
                        for c in claimed], NEUTRAL)
    except RetryableError as exc:
        return Verdict([Outcome(c.delivery_id, "transient", error_class=type(exc).__name__, error=exc.message)
                        for c in claimed], FAILURE)
    except (HubError, OSError) as exc:
        # An error the adapter did not classify: retrying is the safe default, bounded by max_attempts.
        return Verdict([Outcome(c.delivery_id, "transient", error_class=type(exc).__name__, error=str(exc))
                        for c in claimed], FAILURE)
    by_event: dict[str, PushResult] = {r.event_id: r for r in results}
    outcomes = []
    accepted = transient = 0
    for c in claimed:
        r = by_event.get(c.event.event_id)
        if r is None:
            outcomes.append(Outcome(c.delivery_id, "transient", error_class="NoResult",
                                    error="the target gave no result for this event"))
            transient += 1
        elif r.accepted:
            outcomes.append(Outcome(c.delivery_id, "delivered", receipt=r.receipt))
            accepted += 1
        elif r.permanent:
            outcomes.append(Outcome(c.delivery_id, "permanent", error_class="PermanentDeliveryError",
                                    error=r.error))
        else:
            outcomes.append(Outcome(c.delivery_id, "transient", error_class="RetryableError", error=r.error))
            transient += 1
    health = SUCCESS if accepted else (FAILURE if transient else NEUTRAL)
    return Verdict(outcomes, health)



class DeliveryLoop:
    """Delivers every enabled target's due events until told to stop."""

    def __init__(self, store: Store, settings: Settings, config: DeliveryConfig, worker: str,
                 stop: threading.Event) -> None:
        self.store = store
        self.settings = settings
        self.config = config
        self.worker = worker
        self.stop = stop
        prefer_custom_plans(store.engine)
        # PostgreSQL: claims and outcomes go through the loop's own autocommit engine (see delivery_engine).
        self.engine = delivery_engine(store.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False) if self.engine else None
        self.adapters: dict[str, TargetAdapter] = {
            name: load_target(settings, config, name) for name in config.enabled_targets()}
        self.limiters = {name: RateLimiter(config.targets[name].rate_limit) for name in self.adapters}
        self.last_fan_out = 0.0
        self.delivered = 0

    def run(self) -> None:
        """Loop until ``stop`` is set; a batch under way is finished and recorded first."""
        pause = 0.5
        while not self.stop.is_set():
            try:
                handled = self.run_once()
                pause = 0.5
            except DBAPIError as exc:
                log.warning("store unavailable (%s); trying again in %.1fs", type(exc.orig).__name__, pause)
                self.store.engine.dispose()
                if self.engine is not None:
                    self.engine.dispose()
                self.stop.wait(pause)
                pause = min(pause * 2, 5.0)
                continue
            if handled == 0:
                self.stop.wait(self.settings.worker.poll_seconds)

    def run_once(self) -> int:
        """Route what is new (now and then), then one batch per target; returns events handled."""
        now = time.monotonic()
        if now - self.last_fan_out >= self.settings.worker.fan_out_seconds:
            self.last_fan_out = now
            fan_out(self.store, self.config, batch=self.settings.worker.fan_out_batch)
        return sum(self.deliver(name) for name in self.adapters if not self.stop.is_set())

    @contextmanager
    def hot(self) -> Iterator[Session]:
        """A session for the hot path: the loop's own engine on PostgreSQL, the store's on SQLite."""
        if self.sessions is None:
            with self.store.session() as session:
                yield session
        else:
            with self.sessions.begin() as session:
                yield session

    def deliver(self, target: str) -> int:
        """Claim, push and record one batch of ``target``; returns how many events it carried."""
        policy = self.config.targets[target]
        with self.hot() as session:
            gate = circuit.gate(session, target, policy.circuit, utcnow())
            if not gate.may_send:
                return 0
            claimed = claim(session, target, 1 if gate.probe else policy.batch_size, self.worker,
                            self.settings.worker.lease_seconds)
            if not claimed and gate.probe:
                # Nothing to probe with: leave the circuit due, so the next event may probe at once.
                session.execute(update(CircuitState).where(CircuitState.target == target)
                                .values(state=circuit.OPEN, retry_at=utcnow()))
        if not claimed:
            return 0
        if not self.limiters[target].acquire(len(claimed), self.stop):
            return 0  # stopping: the claim comes back after its lease
        started = time.monotonic()
        verdict = judge(claimed, self.adapters[target].push)
        duration_ms = int((time.monotonic() - started) * 1000)
        with self.hot() as session:
            counts = record_outcomes(session, claimed, verdict.outcomes, policy.retry, self.worker, duration_ms)
            if verdict.health == SUCCESS:
                circuit.record_success(session, target, gate, utcnow())
        if verdict.health == FAILURE:
            # Counting a failure reads and writes the shared circuit row: a transaction of its own.
            with self.store.session() as session:
                error = next((o.error for o in verdict.outcomes if o.error), "failed")
                state = circuit.record_failure(session, target, policy.circuit, error or "failed", utcnow())
            if state == circuit.OPEN:
                log.warning("target %s: circuit open after failure: %s", target, error)
        self.delivered += counts["delivered"]
        return len(claimed)

    def close(self) -> None:
        """Close every target adapter and the loop's own engine."""
        for adapter in self.adapters.values():
            adapter.close()
        if self.engine is not None:
            self.engine.dispose()


def ensure_circuits(store: Store, targets: list[str]) -> None:
    """Give every target a circuit row, so workers never race to create one."""
    now = utcnow()
    with store.session() as session:
        insert_new(session, CircuitState, [
            {"target": name, "state": circuit.CLOSED, "consecutive_failures": 0, "times_opened": 0,
             "updated_at": now} for name in targets])
