"""The EDRMS link's scheduled jobs: pull new and changed documents; refresh links and retention after the
facts behind them changed (a merge or unmerge, a death, a case closed or an adoption order).

``refresh_documents`` reads the outbox as a change feed, after its own cursor (kept in ``cursors`` and
moved in the transaction of what it wrote): Person and Episode events name the people whose documents
must be looked at again. A document the pull linked is resolved again from its identifiers (an unmerge
can give it back to the person it was about); one a records manager linked follows its person to a
merge survivor. Then retention is recomputed and the canonical link written through the core's writer,
which appends an event only when something changed - and the EDRMS target writes that back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from edrms.linking import FoundIds, IdentifierIndex
from edrms.pull import DocumentPull
from edrms.records import PULL_USER, SOURCE, active_links, end_link, settle, survivor_of
from edrms.retention import Schedule
from edrms.target import open_repository
from hub.scheduler import JobContext
from hub.settings import Settings
from hub.store.db import Store
from hub.store.documents import EdrmsDocument, EdrmsLink
from hub.store.tables import Cursor, OutboxEvent, utcnow

__all__ = ["open_repository", "pull_documents", "refresh", "refresh_documents"]

REFRESH_STREAM = "refresh:outbox"


def pull_documents(ctx: JobContext) -> dict[str, Any]:
    """The scheduled pull (``[edrms] enabled``), then a refresh of what the facts changed."""
    settings = ctx.settings.edrms
    if not settings.enabled:
        return {"note": "the EDRMS link is switched off ([edrms] enabled = false)"}
    repository = open_repository(settings)
    try:
        result = DocumentPull(ctx.store, repository, settings, Schedule.from_settings(ctx.settings)).run()
    finally:
        repository.close()
    return {**result.as_dict(), "refresh": refresh_documents(ctx.store, ctx.settings)}


def refresh(ctx: JobContext) -> dict[str, Any]:
    """The scheduled refresh on its own."""
    return refresh_documents(ctx.store, ctx.settings)


def _cursor(session: Session) -> Cursor | None:
    return session.scalar(select(Cursor).where(Cursor.source == SOURCE, Cursor.stream == REFRESH_STREAM))


def refresh_documents(store: Store, settings: Settings, *, batch: int = 5000) -> dict[str, int]:
    """Look again at the documents of people whose Person or Case changed since the last refresh."""
    schedule = Schedule.from_settings(settings)
    out = {"events": 0, "documents": 0, "relinked": 0, "written": 0}
    while True:
        with store.session() as session:
            row = _cursor(session)
            after = int(row.value.get("id", 0)) if row is not None else 0
            events = session.execute(select(OutboxEvent.id, OutboxEvent.person_id).where(
                OutboxEvent.id > after, OutboxEvent.entity_type.in_(("Person", "Episode")))
                .order_by(OutboxEvent.id).limit(batch)).all()
            if not events:
                return out
            last = events[-1][0]
            people = {pid for _, pid in events if pid}
            out["events"] += len(events)
            docs = _documents_of(session, people)
            out["documents"] += len(docs)
            out["relinked"] += _relink(session, docs, settings)
            settled = settle(session, docs, schedule)
            out["written"] += settled.created + settled.updated
            if row is None:
                session.add(Cursor(source=SOURCE, stream=REFRESH_STREAM, value={"id": last}, updated_at=utcnow()))
            else:
                row.value, row.updated_at = {"id": last}, utcnow()
            session.commit()
            if len(events) < batch:
                return out


def _documents_of(session: Session, people: set[str]) -> list[EdrmsDocument]:
    ids = sorted(people)
    docs: dict[int, EdrmsDocument] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for doc in session.scalars(select(EdrmsDocument).where(EdrmsDocument.person_id.in_(chunk))):
            docs[doc.id] = doc
        linked_before = select(EdrmsLink.document_id).where(EdrmsLink.person_id.in_(chunk))
        for doc in session.scalars(select(EdrmsDocument).where(EdrmsDocument.id.in_(linked_before),
                                                               EdrmsDocument.status != "deleted")):
            docs[doc.id] = doc
    return [docs[k] for k in sorted(docs)]


def _relink(session: Session, docs: list[EdrmsDocument], settings: Settings) -> int:
    """Resolve pull-linked documents again; move manually linked ones to their person's merge survivor."""
    index = IdentifierIndex(session, settings.edrms.client_id_system)
    found = {d.id: FoundIds(d.person_ref, d.nhs_number, d.client_ref, d.case_ref) for d in docs}
    index.load(found.values())
    now = utcnow()
    moved = 0
    for doc in docs:
        links = active_links(session, doc.id)
        manual = [k for k in links if k.method == "manual"]
        if manual:
            target = survivor_of(session, manual[-1].person_id)
            if target != manual[-1].person_id:
                end_link(manual[-1], PULL_USER, f"the person was merged into {target}", now)
                session.add(EdrmsLink(document_id=doc.id, person_id=target, episode_id=manual[-1].episode_id,
                                      method="manual", basis="merge", reason=manual[-1].reason,
                                      created_by=manual[-1].created_by, created_at=now, active=True))
                doc.link_to(target, doc.episode_id)
                moved += 1
            continue
        if doc.orphan_reason == "UNLINKED":
            continue
        resolution = index.resolve(found[doc.id])
        if (resolution.person_id, resolution.episode_id) == (doc.person_id, doc.episode_id):
            continue
        for old in links:
            end_link(old, PULL_USER, "the person's record changed (merge or unmerge)", now)
        if resolution.linked:
            session.add(EdrmsLink(document_id=doc.id, person_id=resolution.person_id,
                                  episode_id=resolution.episode_id, method="pull", basis=resolution.basis[:40],
                                  reason=f"identifiers in the document's properties: {resolution.basis}",
                                  created_by=PULL_USER, created_at=now, active=True))
            doc.link_to(str(resolution.person_id), resolution.episode_id)
        else:
            doc.make_orphan(resolution.reason)
        moved += 1
    session.flush()
    return moved
