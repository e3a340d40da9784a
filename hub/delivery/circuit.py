"""A per-target circuit breaker shared by every worker through the store.

Closed: batches flow. After ``failure_threshold`` consecutive failed batches the
circuit opens and nobody calls the target until ``cooldown_seconds`` have
passed; then exactly one worker wins the right to send one probe event
(half open). A probe that succeeds closes the circuit; one that fails opens it
for another cool-down. A probe whose worker vanished is given up after a
further cool-down, so the circuit never sticks half open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.delivery.config import CircuitPolicy
from hub.store.delivery import CircuitState

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Gate:
    """What a worker may do with a target now: send a batch, send one probe event, or wait."""

    state: str
    may_send: bool
    probe: bool
    failures: int


def gate(session: Session, target: str, policy: CircuitPolicy, now: datetime) -> Gate:
    """Whether the circuit lets this worker call ``target`` now (taking the probe when it is due)."""
    row = session.execute(
        select(CircuitState.state, CircuitState.retry_at, CircuitState.consecutive_failures)
        .where(CircuitState.target == target)
    ).first()
    if row is None or row.state == CLOSED:
        return Gate(CLOSED, True, False, row.consecutive_failures if row else 0)
    if row.retry_at is not None and row.retry_at > now:
        return Gate(row.state, False, False, row.consecutive_failures)
    # Due for a probe: the conditional update lets exactly one worker have it.
    taken = session.execute(
        update(CircuitState)
        .where(CircuitState.target == target, CircuitState.state == row.state,
               CircuitState.retry_at == row.retry_at)
        .values(state=HALF_OPEN, retry_at=now + timedelta(seconds=policy.cooldown_seconds), updated_at=now)
    )
    won = taken.rowcount == 1  # type: ignore[attr-defined]
    return Gate(HALF_OPEN, won, won, row.consecutive_failures)


def record_success(session: Session, target: str, seen: Gate, now: datetime) -> None:
    """A batch got through: close the circuit (written only when it was not already clean)."""
    if seen.state == CLOSED and seen.failures == 0:
        return
    session.execute(
        update(CircuitState).where(CircuitState.target == target)
        .values(state=CLOSED, consecutive_failures=0, opened_at=None, retry_at=None, updated_at=now)
    )


def record_failure(session: Session, target: str, policy: CircuitPolicy, error: str, now: datetime) -> str:
    """A batch failed as a whole: count it, and open the circuit at the threshold or after a failed probe."""
    row = session.scalar(select(CircuitState).where(CircuitState.target == target).with_for_update())
    if row is None:
        row = CircuitState(target=target, state=CLOSED, consecutive_failures=0, times_opened=0, updated_at=now)
        session.add(row)
    row.consecutive_failures += 1
    row.last_error = error[:2000]
    row.updated_at = now
    if row.state == HALF_OPEN or (row.state == CLOSED and row.consecutive_failures >= policy.failure_threshold):
        row.state = OPEN
        row.opened_at = now
        row.retry_at = now + timedelta(seconds=policy.cooldown_seconds)
        row.times_opened += 1
    session.flush()
    return row.state
