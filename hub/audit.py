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

import asyncio
import contextlib
import csv
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, cast

from sqlalchemy import Connection, Select, String, Table, bindparam, func, insert, literal, select
from sqlalchemy.orm import Session

from hub.errors import Conflict, Forbidden, HubError, NotFound
from hub.store.audit import AuditEvent, AuditSubject, BreakGlassReview
from hub.store.bulk import PreparedStatement
from hub.store.db import KeptConnection, Store, WalCheckpoints, is_sqlite
from hub.store.fit import fit, fit_to
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


PERSON_ID_LENGTH = AuditSubject.person_id.type.length  # type: ignore[attr-defined]


def _text(value: str | None) -> str | None:
    """Free text for a TEXT column: any length, but no NUL (PostgreSQL refuses it)."""
    return value.replace("\x00", "\ufffd") if value else value


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


# Built once: the writer runs them for every group commit, straight on the driver's cursor (SQLAlchemy's
# per-statement and per-row handling cost more than SQLite's inserts). The people and a break-glass review are tied
# to their audit row by its event id (unique, indexed) inside the INSERT, so the writer never reads ids back.
_EVENTS = cast(Table, AuditEvent.__table__)
_INSERT_EVENTS = PreparedStatement(insert(_EVENTS).values(
    {c.key: bindparam(c.key, type_=c.type) for c in _EVENTS.c if c.key != "id"}))
_INSERT_SUBJECTS = PreparedStatement(insert(cast(Table, AuditSubject.__table__)).from_select(
    ["audit_id", "person_id"],
    select(_EVENTS.c.id, bindparam("person_id", type_=String)).where(_EVENTS.c.event_id == bindparam("event_id"))))
_INSERT_REVIEWS = PreparedStatement(insert(cast(Table, BreakGlassReview.__table__)).from_select(
    ["audit_id", "user_id", "reason", "status", "created_at"],
    select(_EVENTS.c.id, _EVENTS.c.user_id, _EVENTS.c.break_glass_reason, literal("pending", String),
           _EVENTS.c.recorded).where(_EVENTS.c.event_id == bindparam("event_id"))))


def time_ordered_uuid() -> str:
    """A UUID version 7 (RFC 9562): the Unix time in milliseconds, then random bits.

    Audit rows' event ids: consecutive rows' ids sort together, so each group
    commit adds to the same few pages of the unique index on ``event_id``
    instead of dirtying a random page of it per row (with uuid4, writing those
    pages to the WAL cost more than the rows).
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10)) & ((1 << 80) - 1)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    return str(uuid.UUID(int=value))


@dataclass(slots=True)
class AuditRow:
    """One request's audit row as it will be inserted, with the people it touched."""

    event: dict[str, Any]
    persons: list[str]
    break_glass: bool

    @classmethod
    def of(cls, ctx: AuditContext, status: int) -> AuditRow:
        """The row for ``ctx`` answered with ``status``."""
        action = ctx.action or ("read" if ctx.method in ("GET", "HEAD") else "write")
        outcome = ctx.outcome or outcome_for(status)
        if outcome == "success" and status >= 400:
            outcome = outcome_for(status)
        # Values from outside (token claims, headers, the path) fitted to their columns, as PostgreSQL enforces.
        event = {
            "recorded": utcnow(), "user_id": fit_to(AuditEvent.user_id, ctx.user_id),
            "issuer": fit_to(AuditEvent.issuer, ctx.issuer), "role": fit_to(AuditEvent.role, ctx.role),
            "team": fit_to(AuditEvent.team, ctx.team), "purpose": fit_to(AuditEvent.purpose, ctx.purpose),
            "client_ip": fit_to(AuditEvent.client_ip, ctx.client_ip), "method": fit_to(AuditEvent.method, ctx.method),
            "path": fit_to(AuditEvent.path, ctx.path), "action": action, "outcome": outcome,
            "status": status, "reason": _text(ctx.reason), "break_glass_reason": _text(ctx.break_glass_reason),
            "resources": list(ctx.resources),
        }
        persons = [fit(p, PERSON_ID_LENGTH) for p in ctx.persons]
        return cls(event, persons, bool(ctx.break_glass_reason) and outcome == "success")


# The shortest time between two group commits of one writer under load (see AuditTrail).
COMMIT_SPACING = 0.004


@dataclass(slots=True)
class _Waiting:
    row: AuditRow
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[str]


def _settle_all(outcomes: list[tuple[asyncio.Future[str], str | None, BaseException | None]]) -> None:
    for future, audit_id, error in outcomes:
        _settle(future, audit_id, error)


def _settle(future: asyncio.Future[str], event_id: str | None, error: BaseException | None) -> None:
    if future.done():  # the client went away; the row is written all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert event_id is not None
        future.set_result(event_id)


class AuditTrail:
    """Writes audit rows in their own transactions, apart from the request's work.

    :meth:`record` is the web layer's path. It is a group commit: the row goes
    to one writer thread per process, which inserts whatever rows are waiting
    in one transaction (one lock and one commit for many requests instead of
    one each) and wakes each request only once that transaction has committed,
    so no answer leaves before its row is durable. :meth:`write` writes one row
    synchronously.

    Under load the writer commits at most once every ``commit_spacing``
    seconds, gathering the rows that arrive meanwhile into the same commit; a
    row arriving after a quiet spell is committed at once. On the embedded
    store every commit costs every reader its page cache (SQLite starts each
    read transaction after another connection's commit with an empty cache),
    and with several server processes each writer polls for the one write lock
    with growing sleeps: a writer committing back to back starved the other
    process's writer, and all that process's requests waited on their rows
    (saturation slices at half the rate for seconds on end).
    """

    def __init__(self, store: Store, *, batch_max: int = 500, commit_spacing: float = COMMIT_SPACING) -> None:
        self.store = store
        self.batch_max = batch_max
        self.commit_spacing = commit_spacing
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        # The writer thread's own connection, kept between group commits. On SQLite its commits leave the
        # write-ahead log to a checkpoint thread (see WalCheckpoints): no request waits on a checkpoint.
        self._kept = KeptConnection(store.engine, checkpoints=False)
        self._checkpoints = WalCheckpoints(store.engine) if is_sqlite(store.engine) else None

    def write(self, ctx: AuditContext, status: int) -> str:
        """Append the request's row (and subjects, and a review for a break glass); returns its event id."""
        rows = _with_ids([AuditRow.of(ctx, status)])
        with self.store.engine.begin() as connection:
            _insert(connection, rows)
        return _logged(rows)[0]

    async def record(self, ctx: AuditContext, status: int) -> str:
        """Append the request's row in the writer's next group commit; returns its event id once committed."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(AuditRow.of(ctx, status), loop, loop.create_future())
        self._start_writer()
        self._queue.put(waiting)
        return await waiting.future

    def close(self) -> None:
        """Let the writer commit what is queued, then stop it."""
        with self._writer_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)
            writer.join(timeout=30)
        if self._checkpoints is not None:
            self._checkpoints.close()

    def _start_writer(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            return
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                if self._checkpoints is not None:
                    self._checkpoints.start()
                self._writer = threading.Thread(target=self._run, name="carehub-audit-writer", daemon=True)
                self._writer.start()

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._kept.close()

    def _serve(self) -> None:
        stopping = False
        committed = 0.0
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            if (wait := committed + self.commit_spacing - time.monotonic()) > 0:
                time.sleep(wait)  # under load: let the rows of the next few milliseconds share this commit
            while len(batch) < self.batch_max:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            # One wake-up per event loop for the whole batch, not one per request.
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[str], str | None,
                                                                BaseException | None]]] = {}
            for waiting, event_id, error in self._commit(batch):
                by_loop.setdefault(waiting.loop, []).append((waiting.future, event_id, error))
            committed = time.monotonic()
            for loop, outcomes in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting any more
                    loop.call_soon_threadsafe(_settle_all, outcomes)

    def _commit(self, batch: list[_Waiting]) -> list[tuple[_Waiting, str | None, BaseException | None]]:
        """Insert the batch's rows in one transaction; each waiting request with its row's event id or an error."""
        try:
            ids = self._insert([w.row for w in batch])
        except Exception:
            if len(batch) == 1:
                log.exception("audit row could not be written")
                return [(batch[0], None, HubError("the audit row could not be written"))]
            # One bad row must not fail the requests batched with it.
            return [result for waiting in batch for result in self._commit([waiting])]
        return [(waiting, event_id, None) for waiting, event_id in zip(batch, ids, strict=True)]

    def _insert(self, rows: list[AuditRow]) -> list[str]:
        """Write the rows in one transaction on the writer's kept connection; their event ids."""
        self._kept.transaction(_insert, _with_ids(rows))
        return _logged(rows)


def _with_ids(rows: list[AuditRow]) -> list[AuditRow]:
    """The rows, each given its event id once: a row written again after a lost connection keeps its id, so
    one whose first commit did land cannot be written twice (the unique id refuses it)."""
    for r in rows:
        # Made here, by the writer: os.urandom lets go of the GIL, and on the event loop taking it back from the
        # writer thread would cost a switch.
        if "event_id" not in r.event:
            r.event["event_id"] = time_ordered_uuid()
    return rows


def _insert(connection: Connection, rows: list[AuditRow]) -> None:
    """Write the rows, their people and any break-glass reviews in the connection's transaction."""
    _INSERT_EVENTS.many(connection, [r.event for r in rows])
    _INSERT_SUBJECTS.many(connection, [{"person_id": p, "event_id": r.event["event_id"]}
                                       for r in rows for p in r.persons])
    _INSERT_REVIEWS.many(connection, [{"event_id": r.event["event_id"]} for r in rows if r.break_glass])


def _logged(rows: list[AuditRow]) -> list[str]:
    """Log the refusals among rows just committed (ids, never names); the rows' event ids."""
    for r in rows:
        if r.event["outcome"] != "success":
            log.info("audit %s: %s %s by %s -> %s", r.event["event_id"], r.event["action"], r.event["path"],
                     r.event["user_id"], r.event["outcome"])
    return [r.event["event_id"] for r in rows]


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which audit rows an auditor asks for."""

    person_id: str | None = None
    user_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None


def _filtered(query: AuditQuery) -> Select[AuditEvent]:
    stmt = select(AuditEvent)
    if query.person_id:  # fitted as the rows were, so a long id finds its own rows and no other's
        stmt = stmt.where(AuditEvent.id.in_(
            select(AuditSubject.audit_id).where(AuditSubject.person_id == fit(query.person_id, PERSON_ID_LENGTH))))
    if query.user_id:
        stmt = stmt.where(AuditEvent.user_id == fit_to(AuditEvent.user_id, query.user_id))
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


def count_events(session: Session, query: AuditQuery) -> int:
    """How many audit rows match ``query``."""
    return int(session.scalar(select(func.count()).select_from(_filtered(query).subquery())) or 0)


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


def review_break_glass(session: Session, review_id: int, reviewer: str, decision: str, note: str | None,
                       *, reviewer_issuer: str | None = None) -> BreakGlassReview:
    """An auditor's verdict on one break glass: ``justified`` or ``referred`` (for follow-up).

    Nobody reviews their own break glass, whichever of their roles they act in.
    """
    review = session.get(BreakGlassReview, review_id)
    if review is None:
        raise NotFound(f"no break-glass review {review_id}")
    event = session.get(AuditEvent, review.audit_id)
    if event is not None and event.user_id == reviewer and (reviewer_issuer is None or event.issuer in (
            None, reviewer_issuer)):
        raise Forbidden("you broke this glass yourself: another auditor must review it")
    if review.status != "pending":
        raise Conflict(f"break-glass review {review_id} was already reviewed")
    review.status, review.reviewed_by, review.reviewed_at, review.note = (
        decision, fit_to(BreakGlassReview.reviewed_by, reviewer), utcnow(), _text(note))
    session.flush()
    return review
