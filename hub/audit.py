"""The audit trail: an append-only row for every read, search, write and denial.

Each request carries an :class:`AuditContext` that authentication and the
routes fill in (who, role, team, purpose, which people and resources were
touched, a break-glass reason, why something was refused). The web layer's
middleware hands it to :meth:`AuditTrail.write` *before* the response leaves,
so no route can forget to audit and a request whose audit row cannot be written
fails instead of answering unaudited. Queries for auditors (AuditEvent search,
CSV export, the break-glass review queue) live here too. Logs carry ids only.
"""

from __future__ import annotations

import csv
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from hub.errors import Conflict, NotFound
from hub.store.audit import AuditEvent, AuditSubject, BreakGlassReview
from hub.store.db import Store
from hub.store.tables import utcnow

log = logging.getLogger("carehub.audit")

ACTIONS = ("read", "search", "write")
OUTCOMES = ("success", "denied", "not_found", "invalid", "error")


@dataclass
class AuditContext:
    """What one request did, filled in as it runs."""

    method: str
    path: str
    client_ip: str | None
    user_id: str = "anonymous"
    issuer: str | None = None
    role: str | None = None
    team: str | None = None
    purpose: str | None = None
    action: str | None = None
    outcome: str | None = None
    reason: str | None = None
    break_glass_reason: str | None = None
    persons: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)

    def touch_person(self, person_id: str) -> None:
        """Note a person this request read, found or changed."""
        if person_id not in self.persons:
            self.persons.append(person_id)

    def touch(self, resource_type: str, resource_id: str) -> None:
        """Note a resource (``Type/id``) this request read or changed."""
        self.resources.append(f"{resource_type}/{resource_id}")

    def deny(self, reason: str, outcome: str = "denied") -> None:
        """Record why the request was refused (kept even when the answer is a plain 404)."""
        self.outcome, self.reason = outcome, reason


def outcome_for(status: int) -> str:
    """The audit outcome a response status means when the route did not say."""
    if status < 400:
        return "success"
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "not_found"
    if status < 500:
        return "invalid"
    return "error"


class AuditTrail:
    """Writes audit rows in their own transaction, apart from the request's work."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, ctx: AuditContext, status: int) -> int:
        """Append the request's row (and subjects, and a review for a break glass); returns its id."""
        action = ctx.action or ("read" if ctx.method in ("GET", "HEAD") else "write")
        outcome = ctx.outcome or outcome_for(status)
        if outcome == "success" and status >= 400:
            outcome = outcome_for(status)
        now = utcnow()
        row = {
            "event_id": str(uuid.uuid4()), "recorded": now, "user_id": ctx.user_id[:128], "issuer": ctx.issuer,
            "role": ctx.role, "team": ctx.team, "purpose": ctx.purpose, "client_ip": ctx.client_ip,
            "method": ctx.method[:8], "path": ctx.path[:512], "action": action, "outcome": outcome,
            "status": status, "reason": ctx.reason, "break_glass_reason": ctx.break_glass_reason,
            "resources": ctx.resources,
        }
        with self.store.engine.begin() as conn:
            audit_id = conn.execute(insert(AuditEvent).returning(AuditEvent.id), row).scalar_one()
            if ctx.persons:
                conn.execute(insert(AuditSubject), [{"audit_id": audit_id, "person_id": p} for p in ctx.persons])
            if ctx.break_glass_reason and outcome == "success":
                conn.execute(insert(BreakGlassReview), {
                    "audit_id": audit_id, "user_id": ctx.user_id[:128], "reason": ctx.break_glass_reason,
                    "status": "pending", "created_at": now,
                })
        if outcome != "success":
            log.info("audit %s: %s %s by %s -> %s", audit_id, action, ctx.path, ctx.user_id, outcome)
        return audit_id


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which audit rows an auditor asks for."""

    person_id: str | None = None
    user_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None


def _filtered(query: AuditQuery) -> Select[tuple[AuditEvent]]:
    stmt = select(AuditEvent)
    if query.person_id:
        stmt = stmt.where(AuditEvent.id.in_(
            select(AuditSubject.audit_id).where(AuditSubject.person_id == query.person_id)))
    if query.user_id:
        stmt = stmt.where(AuditEvent.user_id == query.user_id)
    if query.since:
        stmt = stmt.where(AuditEvent.recorded >= query.since)
    if query.until:
        stmt = stmt.where(AuditEvent.recorded < query.until)
    if query.outcome:
        stmt = stmt.where(AuditEvent.outcome == query.outcome)
    return stmt


def search_events(session: Session, query: AuditQuery, *, after: int | None = None,
                  limit: int = 50) -> list[AuditEvent]:
    """Audit rows matching ``query`` in id order, after id ``after`` (keyset paging)."""
    stmt = _filtered(query).order_by(AuditEvent.id).limit(limit)
    if after is not None:
        stmt = stmt.where(AuditEvent.id > after)
    return list(session.scalars(stmt))


def subjects_of(session: Session, audit_ids: Sequence[int]) -> dict[int, list[str]]:
    """The people each audit row touched."""
    found: dict[int, list[str]] = {i: [] for i in audit_ids}
    if audit_ids:
        for audit_id, person_id in session.execute(
            select(AuditSubject.audit_id, AuditSubject.person_id)
            .where(AuditSubject.audit_id.in_(list(audit_ids))).order_by(AuditSubject.id)
        ):
            found[audit_id].append(person_id)
    return found


def get_event(session: Session, event_id: str) -> AuditEvent:
    """One audit row by its public id."""
    row = session.scalar(select(AuditEvent).where(AuditEvent.event_id == event_id))
    if row is None:
        raise NotFound(f"no audit event {event_id}")
    return row


CSV_COLUMNS = ("event_id", "recorded", "user_id", "issuer", "role", "team", "purpose", "client_ip", "method", "path",
               "action", "outcome", "status", "reason", "break_glass_reason", "persons", "resources")


def iter_export(store: Store, since: datetime | None, until: datetime | None, batch: int = 5000
                ) -> Iterator[dict[str, Any]]:
    """Every audit row in the period as a flat dict, in order, read in batches."""
    after: int | None = None
    query = AuditQuery(since=since, until=until)
    while True:
        with store.session() as session:
            rows = search_events(session, query, after=after, limit=batch)
            subjects = subjects_of(session, [r.id for r in rows])
            for r in rows:
                yield {
                    "event_id": r.event_id, "recorded": r.recorded.isoformat(), "user_id": r.user_id,
                    "issuer": r.issuer, "role": r.role, "team": r.team, "purpose": r.purpose,
                    "client_ip": r.client_ip, "method": r.method, "path": r.path, "action": r.action,
                    "outcome": r.outcome, "status": r.status, "reason": r.reason,
                    "break_glass_reason": r.break_glass_reason, "persons": " ".join(subjects[r.id]),
                    "resources": " ".join(r.resources or []),
                }
        if len(rows) < batch:
            return
        after = rows[-1].id


def export_csv(store: Store, out: TextIO | Path, since: datetime | None = None, until: datetime | None = None) -> int:
    """Write the period's audit rows as CSV; returns how many."""
    if isinstance(out, Path):
        with out.open("w", newline="", encoding="utf-8") as handle:
            return export_csv(store, handle, since, until)
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    count = 0
    for row in iter_export(store, since, until):
        writer.writerow(row)
        count += 1
    return count


def pending_reviews(session: Session, limit: int = 100) -> list[tuple[BreakGlassReview, AuditEvent]]:
    """Break glasses waiting for an auditor, oldest first."""
    return [(r, e) for r, e in session.execute(
        select(BreakGlassReview, AuditEvent).join(AuditEvent, AuditEvent.id == BreakGlassReview.audit_id)
        .where(BreakGlassReview.status == "pending").order_by(BreakGlassReview.id).limit(limit)
    )]


def review_break_glass(session: Session, review_id: int, reviewer: str, decision: str, note: str | None
                       ) -> BreakGlassReview:
    """An auditor's verdict on one break glass: ``justified`` or ``referred`` (for follow-up)."""
    review = session.get(BreakGlassReview, review_id)
    if review is None:
        raise NotFound(f"no break-glass review {review_id}")
    if review.status != "pending":
        raise Conflict(f"break-glass review {review_id} was already reviewed")
    review.status, review.reviewed_by, review.reviewed_at, review.note = decision, reviewer, utcnow(), note
    session.flush()
    return review
