"""What an operator can do with deliveries: list, show, retry (replay) and cancel, with who did it.

These service functions back both ``carehub deliveries ...`` and the
``/api/ops/deliveries`` routes; each takes the acting user's id and writes it in
the delivery's history, so the audit shows who retried or cancelled what.

* Retrying a *pending* or *failed* delivery makes it due now.
* Retrying a *dead* (or *cancelled*) delivery **replays** it: a new delivery row
  for the same event and target (the next generation) links back through
  ``replay_of``; the original keeps its history and records ``replayed_by``.
  Replaying a dead letter after the fix unblocks its ordering key, and the
  target sees the event once (same idempotency key).
* Cancelling stops every further attempt; a cancelled row no longer blocks its
  key. A delivery in flight cannot be cancelled until its attempt reports back.

An event delivered on the happy path has no delivery row: its target's lane
cursor passed it (:mod:`hub.delivery.lanes`). :func:`event_deliveries` answers
"was event X delivered to T" either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.delivery.config import DeliveryConfig
from hub.delivery.queue import attempt_on_row
from hub.errors import Conflict, NotFound
from hub.store.delivery import (
    CANCELLED,
    DEAD,
    DELIVERED,
    FAILED,
    IN_FLIGHT,
    PENDING,
    Delivery,
    DeliveryCursor,
    DeliveryHistory,
)
from hub.store.tables import OutboxEvent, utcnow


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """Which deliveries to list: by status, target, ordering key, event, and last change since/until."""

    status: str | None = None
    target: str | None = None
    ordering_key: str | None = None
    event_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def summary(d: Delivery) -> dict[str, Any]:
    """A delivery as plain JSON (no event payload: it may carry personal data)."""
    return {
        "id": d.id, "event_id": d.event_id, "outbox_id": d.outbox_id, "target": d.target,
        "ordering_key": d.ordering_key, "generation": d.generation, "status": d.status, "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at.isoformat() if d.status in (PENDING, FAILED) else None,
        "lease_until": d.lease_until.isoformat() if d.lease_until else None, "claimed_by": d.claimed_by,
        "error_class": d.error_class, "last_error": d.last_error, "receipt": d.receipt,
        "replay_of": d.replay_of, "replayed_by": d.replayed_by,
        "created_at": d.created_at.isoformat(), "updated_at": d.updated_at.isoformat(),
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
    }


def ordering_key_of(session: Session, delivery_id: int) -> str | None:
    """Whose events a delivery carries (its ordering key: the person, for a person's events), or None."""
    key: str | None = session.scalar(select(Delivery.ordering_key).where(Delivery.id == delivery_id))
    return key


def list_deliveries(session: Session, flt: DeliveryFilter, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Deliveries matching ``flt``, most recently changed first."""
    query = select(Delivery).order_by(Delivery.updated_at.desc(), Delivery.id.desc()).limit(limit).offset(offset)
    if flt.status:
        query = query.where(Delivery.status == flt.status)
    if flt.target:
        query = query.where(Delivery.target == flt.target)
    if flt.ordering_key:
        query = query.where(Delivery.ordering_key == flt.ordering_key)
    if flt.event_id:
        # through the outbox's unique event id, so deliveries need no index of their own on it
        query = query.where(Delivery.outbox_id.in_(select(OutboxEvent.id).where(OutboxEvent.event_id == flt.event_id)))
    if flt.since:
        query = query.where(Delivery.updated_at >= flt.since)
    if flt.until:
        query = query.where(Delivery.updated_at < flt.until)
    return [summary(d) for d in session.scalars(query)]


def _get(session: Session, delivery_id: int) -> Delivery:
    d = session.get(Delivery, delivery_id, with_for_update=True)
    if d is None:
        raise NotFound(f"no delivery {delivery_id}")
    return d


def show_delivery(session: Session, delivery_id: int) -> dict[str, Any]:
    """One delivery with its event (without payload), every attempt and action, and its replays."""
    d = session.get(Delivery, delivery_id)
    if d is None:
        raise NotFound(f"no delivery {delivery_id}")
    e = session.get(OutboxEvent, d.outbox_id)
    assert e is not None
    history = [
        {"at": h.at.isoformat(), "action": h.action, "outcome": h.outcome, "attempt": h.attempt,
         "worker": h.worker, "actor": h.actor, "error_class": h.error_class, "error": h.error,
         "receipt": h.receipt, "duration_ms": h.duration_ms}
        for h in session.scalars(select(DeliveryHistory).where(DeliveryHistory.delivery_id == d.id)
                                 .order_by(DeliveryHistory.id))
    ]
    delivered = attempt_on_row(d)
    if delivered is not None and not any(
            h["action"] == "attempt" and h["outcome"] == DELIVERED and h["attempt"] == d.attempts for h in history):
        history.append(delivered)
    generations = [
        {"id": g.id, "generation": g.generation, "status": g.status, "replay_of": g.replay_of}
        for g in session.scalars(select(Delivery).where(Delivery.outbox_id == d.outbox_id,
                                                        Delivery.target == d.target).order_by(Delivery.generation))
    ]
    return {
        **summary(d),
        "event": {"event_id": e.event_id, "entity_type": e.entity_type, "entity_id": e.entity_id,
                  "person_id": e.person_id, "kind": e.kind, "version": e.version, "sequence": e.id,
                  "source": e.source, "created_at": e.created_at.isoformat(),
                  "idempotency_key": f"{e.entity_id}:{e.version}"},
        "history": history,
        "generations": generations,
    }


def _note(session: Session, d: Delivery, action: str, outcome: str, actor: str, error: str | None = None) -> None:
    session.add(DeliveryHistory(delivery_id=d.id, at=utcnow(), action=action, outcome=outcome,
                                attempt=d.attempts, actor=actor, error=error))


def _replay(session: Session, d: Delivery, actor: str) -> Delivery:
    now = utcnow()
    generation = session.scalar(select(func.max(Delivery.generation)).where(
        Delivery.outbox_id == d.outbox_id, Delivery.target == d.target)) or 0
    new = Delivery(outbox_id=d.outbox_id, event_id=d.event_id, target=d.target, ordering_key=d.ordering_key,
                   generation=generation + 1, status=PENDING, attempts=0, next_attempt_at=now,
                   replay_of=d.id, created_at=now, updated_at=now)
    session.add(new)
    session.flush()
    d.replayed_by = new.id
    d.updated_at = now
    _note(session, d, "replay", "replayed", actor, f"replayed as delivery {new.id}")
    _note(session, new, "replay", PENDING, actor, f"replay of delivery {d.id}")
    session.flush()
    return new


def retry_delivery(session: Session, delivery_id: int, actor: str) -> dict[str, Any]:
    """Retry one delivery now (pending/failed) or replay it (dead/cancelled); returns the row that will go."""
    d = _get(session, delivery_id)
    if d.replayed_by is not None:
        raise Conflict(f"delivery {d.id} was already replayed as delivery {d.replayed_by}; retry that one")
    if d.status in (PENDING, FAILED):
        d.next_attempt_at = d.updated_at = utcnow()
        _note(session, d, "retry", d.status, actor)
        return summary(d)
    if d.status in (DEAD, CANCELLED):
        return summary(_replay(session, d, actor))
    if d.status == IN_FLIGHT:
        raise Conflict(f"delivery {d.id} is being delivered now by {d.claimed_by}")
    raise Conflict(f"delivery {d.id} was already delivered (receipt {d.receipt})")


def retry_deliveries(
    session: Session, actor: str, *, target: str, since: datetime, statuses: tuple[str, ...] = (DEAD, FAILED),
) -> list[int]:
    """Retry (or replay) every delivery of ``target`` in ``statuses`` last changed since ``since``, in event order.

    Returns the ids of the rows that will go (replays are new rows).
    """
    rows = session.scalars(
        select(Delivery).where(Delivery.target == target, Delivery.status.in_(statuses),
                               Delivery.replayed_by.is_(None), Delivery.updated_at >= since)
        .order_by(Delivery.outbox_id).with_for_update()
    ).all()
    return [retry_delivery(session, d.id, actor)["id"] for d in rows]


def cancel_delivery(session: Session, delivery_id: int, actor: str, reason: str | None = None) -> dict[str, Any]:
    """Stop every further attempt of a delivery; its ordering key is no longer held back by it."""
    d = _get(session, delivery_id)
    if d.status == IN_FLIGHT:
        raise Conflict(f"delivery {d.id} is being delivered now by {d.claimed_by}; cancel it when the attempt ends")
    if d.status in (DELIVERED, CANCELLED):
        raise Conflict(f"delivery {d.id} is already {d.status}")
    if d.replayed_by is not None:
        raise Conflict(f"delivery {d.id} was replayed as delivery {d.replayed_by}; cancel that one")
    d.status = CANCELLED
    d.updated_at = utcnow()
    d.lease_until = None
    _note(session, d, "cancel", CANCELLED, actor, reason)
    return summary(d)


def event_deliveries(session: Session, event_id: str, config: DeliveryConfig) -> dict[str, Any]:
    """What became of one event at every enabled target that subscribes to it.

    Per target: its delivery rows when it has any (a failure, a dead letter, a replay, or an event held
    behind one: the last generation speaks), else ``delivered`` when the target's lane cursor has passed it
    and ``pending`` otherwise (with the worker holding the lane now, if one is: it may be pushing it).
    """
    e = session.scalar(select(OutboxEvent).where(OutboxEvent.event_id == event_id))
    if e is None:
        raise NotFound(f"no event {event_id}")
    targets: dict[str, Any] = {}
    for target in config.targets_for(e.entity_type, e.kind):
        rows = session.scalars(select(Delivery).where(Delivery.outbox_id == e.id, Delivery.target == target)
                               .order_by(Delivery.generation)).all()
        if rows:
            targets[target] = {"status": rows[-1].status, "via": "rows", "deliveries": [d.id for d in rows]}
            continue
        cursor = session.get(DeliveryCursor, (target, e.lane))
        passed = cursor is not None and e.id <= cursor.position
        targets[target] = {"status": DELIVERED if passed else PENDING, "via": "lane", "lane": e.lane,
                           "cursor": cursor.position if cursor is not None else None,
                           "lane_held_by": cursor.holder if cursor is not None else None}
    return {"event_id": e.event_id, "sequence": e.id, "entity_type": e.entity_type, "kind": e.kind,
            "targets": targets}
