"""One delivery loop: per target, push the next batch (due delivery rows, else a lane) and record the outcome.

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
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from hub.contract import ChangeEvent, PushResult, TargetAdapter
from hub.delivery import circuit
from hub.delivery.config import DeliveryConfig
from hub.delivery.fanout import insert_new
from hub.delivery.lanes import (
    Runner,
    SessionRunner,
    advance,
    ensure_cursors,
    lease_lane,
    pg_runner,
    read_lane,
    record_exceptions,
    release,
)
from hub.delivery.queue import Outcome, claim, delivery_engine, prefer_custom_plans, record_outcomes
from hub.errors import HubError, PermanentDeliveryError, RetryableError
from hub.registry import load_target
from hub.settings import Settings
from hub.store.db import Store
from hub.store.delivery import DELIVERED, CircuitState
from hub.store.tables import utcnow

log = logging.getLogger("carehub.delivery")

SUCCESS, FAILURE, NEUTRAL = "success", "failure", "neutral"
# How often a loop looks for due delivery rows while it has found none (and made none).
ROWS_CHECK_SECONDS = 1.0


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
    accepted: int = 0


def judge(ids: list[int], events: list[ChangeEvent], push: Callable[[list[ChangeEvent]], list[PushResult]],
          *, all_or_outcomes: bool = False) -> Verdict:
    """Call the target once with ``events`` and turn its answer (or its error) into one outcome per event.

    ``ids[i]`` names ``events[i]`` in the outcomes: its delivery row's id, or its outbox sequence on a lane.
    ``all_or_outcomes``: when every event was accepted, say only that (no outcomes): a lane's cursor
    records a batch that went as a whole, without a word per event.
    """
    try:
        results = push(events)
    except PermanentDeliveryError as exc:
        return Verdict([Outcome(i, "permanent", error_class=type(exc).__name__, error=exc.message) for i in ids],
                       NEUTRAL)
    except RetryableError as exc:
        return Verdict([Outcome(i, "transient", error_class=type(exc).__name__, error=exc.message) for i in ids],
                       FAILURE)
    except (HubError, OSError) as exc:
        # An error the adapter did not classify: retrying is the safe default, bounded by max_attempts.
        return Verdict([Outcome(i, "transient", error_class=type(exc).__name__, error=str(exc)) for i in ids],
                       FAILURE)
    if len(results) == len(events) and all(r.accepted for r in results) and (
            {r.event_id for r in results} == {e.event_id for e in events}):
        # every event accepted (the usual answer): one outcome each, without looking them up one by one
        if all_or_outcomes:
            return Verdict([], SUCCESS, len(events))
        by_id = {r.event_id: r.receipt for r in results}
        return Verdict([Outcome(i, "delivered", receipt=by_id[e.event_id]) for i, e in zip(ids, events, strict=True)],
                       SUCCESS, len(events))
    by_event: dict[str, PushResult] = {r.event_id: r for r in results}
    outcomes = []
    accepted = transient = 0
    for i, e in zip(ids, events, strict=True):
        r = by_event.get(e.event_id)
        if r is None:
            outcomes.append(Outcome(i, "transient", error_class="NoResult",
                                    error="the target gave no result for this event"))
            transient += 1
        elif r.accepted:
            outcomes.append(Outcome(i, "delivered", receipt=r.receipt))
            accepted += 1
        elif r.permanent:
            outcomes.append(Outcome(i, "permanent", error_class="PermanentDeliveryError", error=r.error))
        else:
            outcomes.append(Outcome(i, "transient", error_class="RetryableError", error=r.error))
            transient += 1
    health = SUCCESS if accepted else (FAILURE if transient else NEUTRAL)
    return Verdict(outcomes, health, accepted)


class DeliveryLoop:
    """Delivers every enabled target's due events until told to stop."""

    def __init__(self, store: Store, settings: Settings, config: DeliveryConfig, worker: str,
                 stop: threading.Event, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock  # the circuit breakers' time (a test's own clock steps through a cool-down)
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
        self.rows_due: dict[str, float] = {}
        # PostgreSQL: lane statements on one raw connection of the loop's own engine (see pg_runner).
        self.lane_runner = pg_runner(self.engine) if self.engine is not None else None
        self.delivered = 0

    def run(self) -> None:
        """Loop until ``stop`` is set; a batch under way is finished and recorded first."""
        pause = 0.5
        errors: tuple[type[BaseException], ...] = (DBAPIError, *(self.lane_runner.errors if self.lane_runner else ()))
        while not self.stop.is_set():
            try:
                handled = self.run_once()
                pause = 0.5
            except errors as exc:
                log.warning("store unavailable (%s); trying again in %.1fs",
                            type(getattr(exc, "orig", None) or exc).__name__, pause)
                self.store.engine.dispose()
                if self.lane_runner is not None:
                    self.lane_runner.close()
                if self.engine is not None:
                    self.engine.dispose()
                self.stop.wait(pause)
                pause = min(pause * 2, 5.0)
                continue
            if handled == 0:
                self.stop.wait(self.settings.worker.poll_seconds)

    def run_once(self) -> int:
        """One batch per target (a lane, or its due delivery rows); returns events handled."""
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

    @contextmanager
    def lanes(self) -> Iterator[Runner]:
        """Where lane statements run: the loop's raw connection on PostgreSQL, a store session on SQLite."""
        if self.lane_runner is not None:
            yield self.lane_runner
        else:
            with self.store.session() as session:
                yield SessionRunner(session)

    def deliver(self, target: str) -> int:
        """Push one batch of ``target``; returns how many events were handled.

        The happy path is a lane, leased only while the circuit is closed (checked in the lease itself).
        Due delivery rows (retries, events held behind them, replays, requeued claims) are looked for every
        :data:`ROWS_CHECK_SECONDS` while there are none, and after this loop made some; the circuit is
        asked first then, and whenever no lane was leased (it may be open, or due for a probe).
        """
        now = time.monotonic()
        rows_due = now >= self.rows_due.get(target, 0.0)
        if not rows_due:
            handled = self.deliver_lane(target, probe=False)
            if handled:
                return handled
        policy = self.config.targets[target]
        with self.hot() as session:
            gate = circuit.gate(session, target, policy.circuit, self.clock())
        if not gate.may_send:
            return 0
        handled = 0
        if rows_due or gate.probe:
            handled = self.deliver_rows(target, gate)
            if not handled:
                self.rows_due[target] = now + ROWS_CHECK_SECONDS
        if (gate.probe and not handled) or (rows_due and not gate.probe):
            handled += self.deliver_lane(target, probe=gate.probe)
        if gate.probe and not handled:
            # Nothing to probe with: leave the circuit due, so the next event may probe at once.
            with self.hot() as session:
                session.execute(update(CircuitState).where(CircuitState.target == target)
                                .values(state=circuit.OPEN, retry_at=self.clock()))
        return handled

    def deliver_rows(self, target: str, gate: circuit.Gate) -> int:
        """Claim, push and record one batch of ``target``'s due delivery rows; returns how many it carried."""
        policy = self.config.targets[target]
        with self.hot() as session:
            claimed = claim(session, target, 1 if gate.probe else policy.batch_size, self.worker,
                            self.settings.worker.lease_seconds)
        if not claimed:
            return 0
        if not self.limiters[target].acquire(len(claimed), self.stop):
            return 0  # stopping: the claim comes back after its lease
        started = time.monotonic()
        verdict = judge([c.delivery_id for c in claimed], [c.event for c in claimed], self.adapters[target].push)
        duration_ms = int((time.monotonic() - started) * 1000)
        with self.hot() as session:
            counts = record_outcomes(session, claimed, verdict.outcomes, policy.retry, self.worker, duration_ms)
            if verdict.health == SUCCESS:
                circuit.record_success(session, target, gate, self.clock())
        self.after(target, verdict)
        self.delivered += counts["delivered"]
        return len(claimed)

    def deliver_lane(self, target: str, *, probe: bool) -> int:
        """Lease a lane of ``target``, push its next events, move its cursor; returns the events handled.

        ``probe``: this loop holds the half-open circuit's probe, so one event goes whatever the circuit says.
        """
        policy = self.config.targets[target]
        pg = self.lane_runner is not None
        with self.lanes() as run:
            leased = lease_lane(run, target, self.worker, self.settings.worker.lease_seconds, probe=probe,
                                postgres=pg)
        if leased is None:
            return 0
        lane, position, claim_id = leased
        with self.lanes() as run:
            batch = read_lane(run, self.config, target, lane, position, claim_id, 1 if probe else policy.batch_size)
        events = [le.event for le in batch.events if not le.held]
        if events and not self.limiters[target].acquire(len(events), self.stop):
            with self.lanes() as run:
                release(run, batch)
            return 0
        started = time.monotonic()
        verdict = judge([e.sequence or 0 for e in events], events, self.adapters[target].push,
                        all_or_outcomes=len(events) == len(batch.events)) if events else Verdict([], NEUTRAL)
        duration_ms = int((time.monotonic() - started) * 1000)
        if verdict.accepted == len(batch.events):
            # the happy path: every event went; one statement moves the cursor and gives the lane back
            with self.lanes() as run:
                advance(run, batch, verdict.accepted, postgres=pg)
            delivered = verdict.accepted
        else:
            # some did not go (or were held): they become delivery rows in the transaction that moves the cursor
            with self.store.session() as session:
                counts = record_exceptions(session, batch, {o.delivery_id: o for o in verdict.outcomes},
                                           policy.retry, self.worker, duration_ms)
            delivered = counts[DELIVERED] if counts else 0
            self.rows_due[target] = 0.0  # look at the rows again soon
        if probe and verdict.health == SUCCESS:
            with self.hot() as session:
                circuit.record_success(session, target, circuit.Gate(circuit.HALF_OPEN, True, True, 0), self.clock())
        self.after(target, verdict)
        self.delivered += delivered
        return len(batch.events) or 1  # a cursor moved past events the target does not want is progress too

    def after(self, target: str, verdict: Verdict) -> None:
        """Count a failed push on the target's circuit (reads and writes the shared row: its own transaction)."""
        if verdict.health != FAILURE:
            return
        with self.store.session() as session:
            error = next((o.error for o in verdict.outcomes if o.error), "failed")
            state = circuit.record_failure(session, target, self.config.targets[target].circuit, error or "failed",
                                           self.clock())
        if state == circuit.OPEN:
            log.warning("target %s: circuit open after failure: %s", target, error)

    def close(self) -> None:
        """Close every target adapter and the loop's own connections."""
        for adapter in self.adapters.values():
            adapter.close()
        if self.lane_runner is not None:
            self.lane_runner.close()
        if self.engine is not None:
            self.engine.dispose()


def ensure_circuits(store: Store, targets: list[str]) -> None:
    """Give every target a circuit row and its lane cursors, so workers never race to create them."""
    now = utcnow()
    with store.session() as session:
        ensure_cursors(session, targets)
        insert_new(session, CircuitState, [
            {"target": name, "state": circuit.CLOSED, "consecutive_failures": 0, "times_opened": 0,
             "updated_at": now} for name in targets])
