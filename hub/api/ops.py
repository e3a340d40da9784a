"""Operator routes (role admin): what the hub holds, and the quarantine (list, show, retry).

Put further operator routes behind ``AdminUser`` from :mod:`hub.api.deps` so
they are authenticated, refused for other roles and audited like these.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from hub.access.decision import Access
from hub.api.deps import AdminUser, AuditDep, PolicyDep, StoreDep
from hub.api.params import RowId, RowIdValue
from hub.contract import Adapter
from hub.quarantine import QuarantineFilter, list_entries, retry, show_entry, withheld_entries
from hub.record import InvalidQuery
from hub.registry import load_adapter
from hub.status import hub_status

router = APIRouter(prefix="/api/ops", tags=["operations"])


class QuarantineEntry(BaseModel):
    """One quarantined record, without its payload."""

    id: int
    source: str
    stream: str
    source_id: str
    reason: str
    message: str
    field: str | None = None
    status: str
    attempts: int


class RetryIn(BaseModel):
    """Which open entries to re-run: ids, or every open entry of a reason and/or source."""

    model_config = ConfigDict(extra="forbid")

    ids: list[RowIdValue] = Field(default_factory=list)
    reason: str | None = None
    source: str | None = None


class RetryResult(BaseModel):
    """What a retry did."""

    received: int
    accepted: int
    quarantined: int


@router.get("/status", summary="What the hub holds, per source and in total")
def status(session: StoreDep, caller: AdminUser) -> dict[str, Any]:
    """Raw, accepted and quarantined per source, canonical counts, the outbox."""
    return hub_status(session)


@router.get("/quarantine", response_model=list[QuarantineEntry], summary="Quarantined records, newest first")
def quarantine_list(
    session: StoreDep, policy: PolicyDep, caller: AdminUser, audit: AuditDep,
    source: str | None = None, reason: str | None = None,
    state: Annotated[str, Query(alias="status", description="open, resolved, superseded or all")] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[QuarantineEntry]:
    """Entries with their reasons; filter by source, reason and status. The message of an entry whose record
    your role may not read (its section, or its person's seal) says so instead of quoting the record."""
    flt = QuarantineFilter(source, reason, None if state == "all" else state)
    entries = list_entries(session, flt, limit)
    withheld = withheld_entries(session, Access(session, policy, caller, audit), entries)
    return [QuarantineEntry.model_validate(q, from_attributes=True).model_copy(
        update={"message": withheld[q.id]} if q.id in withheld else {}) for q in entries]


@router.get("/quarantine/{entry_id}", summary="One quarantined record with its raw payload")
def quarantine_show(entry_id: RowId, session: StoreDep, policy: PolicyDep, caller: AdminUser, audit: AuditDep
                    ) -> dict[str, Any]:
    """The entry, its history and the raw record as kept: the payload only when your role may read its
    section and its person (``withheld`` says why not)."""
    audit.touch("Quarantine", str(entry_id))
    return show_entry(session, entry_id, Access(session, policy, caller, audit))


@router.post("/quarantine/retry", response_model=RetryResult, summary="Re-run quarantined records")
def quarantine_retry(body: RetryIn, request: Request, caller: AdminUser, audit: AuditDep) -> RetryResult:
    """Re-map and re-validate the chosen open entries after a fix."""
    if not body.ids and not body.reason and not body.source:
        raise InvalidQuery("name entry ids, a reason or a source")
    settings = request.app.state.settings
    adapters: dict[str, Adapter] = {}

    def adapter_for(name: str) -> Adapter:
        if name not in adapters:
            adapters[name] = load_adapter(settings, name)
        return adapters[name]

    for entry_id in body.ids:
        audit.touch("Quarantine", str(entry_id))
    result = retry(request.app.state.store, request.app.state.pipeline, adapter_for, ids=body.ids or None,
                   flt=QuarantineFilter(source=body.source, reason=body.reason))
    return RetryResult(received=result.received, accepted=result.accepted, quarantined=result.quarantined)
