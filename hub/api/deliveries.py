"""Operators' delivery routes: see, retry, replay and cancel deliveries (role admin, audited).

Thin routes over :mod:`hub.delivery.operations`; the acting user's id goes into
each delivery's history, and the audit middleware records the call itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from hub.access.decision import Access
from hub.api.deps import AdminUser, AuditDep, PolicyDep, StoreDep
from hub.api.params import Moment, MomentQuery, Offset, RowId
from hub.delivery.config import load_delivery_config
from hub.delivery.operations import (
    DeliveryFilter,
    cancel_delivery,
    event_deliveries,
    list_deliveries,
    ordering_key_of,
    retry_deliveries,
    retry_delivery,
    show_delivery,
)
from hub.errors import NotFound

router = APIRouter(prefix="/api/ops/deliveries", tags=["operations"])


class BulkRetryIn(BaseModel):
    """Retry every dead or failed delivery of one target changed since a moment."""

    model_config = ConfigDict(extra="forbid")

    target: str
    since: Moment


class CancelIn(BaseModel):
    """Why the delivery is being cancelled."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = None


def _open_to(session: Session, access: Access, delivery_id: int) -> None:
    """A delivery of a person the caller may not know of (its ordering key) is answered as one never made."""
    key = ordering_key_of(session, delivery_id)
    if key is not None and access.hidden([key]):
        raise NotFound(f"no delivery {delivery_id}")


@router.get("", summary="Deliveries, most recently changed first")
def deliveries(
    session: StoreDep, policy: PolicyDep, caller: AdminUser, audit: AuditDep,
    status: str | None = None, target: str | None = None, ordering_key: str | None = None,
    event_id: str | None = None, since: MomentQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Filter by status (pending, in_flight, delivered, failed, dead, cancelled), target, person, event."""
    flt = DeliveryFilter(status=status, target=target, ordering_key=ordering_key, event_id=event_id, since=since)
    found = list_deliveries(session, flt, limit, offset)
    hidden = Access(session, policy, caller, audit).hidden({d["ordering_key"] for d in found})
    return [d for d in found if d["ordering_key"] not in hidden]


@router.get("/events/{event_id}", summary="Was this event delivered, per subscribed target")
def event(event_id: str, request: Request, session: StoreDep, caller: AdminUser) -> dict[str, Any]:
    """Per target: delivered (its lane cursor passed it), in flight, pending, or the status of its rows."""
    return event_deliveries(session, event_id, load_delivery_config(request.app.state.settings))


@router.get("/{delivery_id}", summary="One delivery with its attempts")
def delivery(delivery_id: RowId, session: StoreDep, policy: PolicyDep, caller: AdminUser,
             audit: AuditDep) -> dict[str, Any]:
    """The delivery, its history of attempts and operator actions."""
    _open_to(session, Access(session, policy, caller, audit), delivery_id)
    return show_delivery(session, delivery_id)


@router.post("/retry", summary="Retry or replay every dead or failed delivery of a target since a moment")
def retry_many(body: BulkRetryIn, session: StoreDep, caller: AdminUser) -> dict[str, list[int]]:
    """Replays keep a link to the original attempt; returns the ids that will go."""
    return {"ids": retry_deliveries(session, caller.user_id, target=body.target, since=body.since)}


@router.post("/{delivery_id}/retry", summary="Retry a failed delivery now, or replay a dead one")
def retry_one(delivery_id: RowId, session: StoreDep, policy: PolicyDep, caller: AdminUser,
              audit: AuditDep) -> dict[str, Any]:
    """409 when it is in flight or already delivered."""
    _open_to(session, Access(session, policy, caller, audit), delivery_id)
    return retry_delivery(session, delivery_id, caller.user_id)


@router.post("/{delivery_id}/cancel", summary="Stop every further attempt of a delivery")
def cancel(delivery_id: RowId, body: CancelIn, session: StoreDep, policy: PolicyDep, caller: AdminUser,
           audit: AuditDep) -> dict[str, Any]:
    """Cancelling really stops the retries; the person's later events are no longer held back."""
    _open_to(session, Access(session, policy, caller, audit), delivery_id)
    return cancel_delivery(session, delivery_id, caller.user_id, body.reason)
