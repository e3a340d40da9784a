"""The incremental pull: new and changed documents crawled, linked to people and cases, orphans kept.

:class:`DocumentPull` reads one repository page by page. Each page is one transaction: the documents'
metadata and identifiers, their links (made or ended), their retention and canonical links, and the
cursor that resumes after them - so the cursor only moves with the data it covers.

Two ways to find what changed:

* by **query**: ``SELECT * FROM cmis:document WHERE cmis:lastModificationDate >= TIMESTAMP '<cursor>'
  ORDER BY cmis:lastModificationDate, cmis:objectId`` with ``maxItems`` and, as ``skipCount``, the number
  of documents already read at exactly the cursor's time (keyset paging: a document written back by the
  hub moves to the end instead of shifting every later page);
* by the **change log** (``getContentChanges`` from the saved token) when the repository's
  ``capabilityChanges`` allows it and ``[edrms] use_change_log`` is on. Pages overlap at their boundary;
  entries already seen are dropped by (objectId, changeTime, changeType). The first pull of a repository
  always crawls by query, having noted the change-log token it started at.

A document whose identifiers and change token have not changed is left as it is. A document a records
manager linked keeps that link whatever its identifiers say; one they unlinked is not linked again until
its identifiers change.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edrms.cmis import CmisObject, Repository, cmis_instant
from edrms.linking import FoundIds, IdentifierIndex
from edrms.records import PULL_USER, SOURCE, active_links, end_link, settle
from edrms.retention import Schedule
from hub.settings import EdrmsSettings
from hub.store.bulk import bulk_insert, insert_returning, rowids_of_last_insert
from hub.store.db import Store
from hub.store.documents import EdrmsDocument, EdrmsLink
from hub.store.tables import Cursor, utcnow

log = logging.getLogger(__name__)


@dataclass
class PullResult:
    """What one pull did."""

    mode: str = "query"
    pages: int = 0
    read: int = 0
    duplicates: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    linked: int = 0
    orphans: int = 0
    deleted: int = 0
    events: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """For job runs and the CLI."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class DocumentPull:
    """Pull one repository's new and changed documents into the hub."""

    def __init__(self, store: Store, repository: Repository, settings: EdrmsSettings, schedule: Schedule) -> None:
        self.store = store
        self.repository = repository
        self.settings = settings
        self.schedule = schedule
        self.name = settings.repository
        self.stream = f"documents:{self.name}"
        self.facts: dict[str, Any] = {}  # people's retention facts, read once per pull
        self.names = settings.properties

    # -- cursor ---------------------------------------------------------------------------------

    def load_cursor(self, session: Session) -> dict[str, Any]:
        """The saved position (empty before the first pull)."""
        row = session.scalar(select(Cursor).where(Cursor.source == SOURCE, Cursor.stream == self.stream))
        return dict(row.value) if row is not None else {}

    def save_cursor(self, session: Session, value: dict[str, Any]) -> None:
        """Save the position in the transaction of the documents it covers."""
        row = session.scalar(select(Cursor).where(Cursor.source == SOURCE, Cursor.stream == self.stream))
        if row is None:
            session.add(Cursor(source=SOURCE, stream=self.stream, value=value, updated_at=utcnow()))
        else:
            row.value, row.updated_at = value, utcnow()

    # -- the pull -------------------------------------------------------------------------------

    def run(self, *, max_pages: int | None = None) -> PullResult:
        """Pull until the repository has nothing newer (or ``max_pages`` pages)."""
        clock = time.perf_counter()
        self.facts = {}
        with self.store.session() as session:
            cursor = self.load_cursor(session)
        info = self.repository.info()
        use_changes = (self.settings.use_change_log and info.changes_available
                       and self.repository.binding_name == "browser")
        if use_changes and cursor.get("token"):
            result = self._by_changes(cursor, max_pages)
        else:
            if use_changes and not cursor:
                cursor = {"token": info.latest_change_token or "0", "crawl": True}
            result = self._by_query(cursor, max_pages, keep_token=use_changes)
        result.seconds = time.perf_counter() - clock
        log.info("edrms pull %s: %s pages, %s read, %s linked, %s orphans", self.name, result.pages, result.read,
                 result.linked, result.orphans)
        return result

    def _statement(self, since: str | None) -> str:
        where = f" WHERE cmis:lastModificationDate >= TIMESTAMP '{since}'" if since else ""
        return (f"SELECT * FROM {self.settings.document_type}{where} "
                "ORDER BY cmis:lastModificationDate ASC, cmis:objectId ASC")

    def _by_query(self, cursor: dict[str, Any], max_pages: int | None, keep_token: bool) -> PullResult:
        result = PullResult(mode="query")
        since, key = cursor.get("modified"), cursor.get("key")
        ties = int(cursor.get("ties", 0))
        while max_pages is None or result.pages < max_pages:
            page = self.repository.query_page(self._statement(since), self.settings.page_size, ties)
            result.pages += 1
            fresh: list[CmisObject] = []
            at = _instant(since)  # compared as datetimes; written as CMIS text once a page
            for obj in page.objects:
                if at is not None and obj.modified == at and key is not None and obj.object_id <= key:
                    result.duplicates += 1
                    continue
                fresh.append(obj)
            for obj in fresh:
                if obj.modified == at:
                    ties += 1
                else:
                    at, ties = obj.modified, 1
                key = obj.object_id
            since = cmis_instant(at) if at is not None else since
            value: dict[str, Any] = {"modified": since, "key": key, "ties": ties}
            if keep_token:
                value["token"] = cursor.get("token")
            with self.store.session() as session:
                self._apply(session, fresh, result)
                self.save_cursor(session, value)
                session.commit()
            if not page.has_more or not page.objects:
                break
        return result

    def _by_changes(self, cursor: dict[str, Any], max_pages: int | None) -> PullResult:
        result = PullResult(mode="changes")
        token = str(cursor["token"])
        boundary: list[list[str]] = list(cursor.get("boundary", []))
        seen = {(oid, datetime.fromisoformat(when), kind) for oid, when, kind in boundary}
        while max_pages is None or result.pages < max_pages:
            page = self.repository.content_changes(token, self.settings.page_size)
            result.pages += 1
            latest: dict[str, CmisObject] = {}
            deleted: set[str] = set()
            for entry in page.entries:
                if entry.key in seen:
                    result.duplicates += 1
                    continue
                seen.add(entry.key)
                if entry.change_type == "deleted":
                    deleted.add(entry.object_id)
                    latest.pop(entry.object_id, None)
                elif entry.properties.get("cmis:baseTypeId", "cmis:document") == "cmis:document":
                    deleted.discard(entry.object_id)
                    latest[entry.object_id] = (CmisObject(entry.properties) if "cmis:name" in entry.properties
                                               else self.repository.get_object(entry.object_id))
            docs = [o for o in latest.values() if o.properties.get("cmis:baseTypeId") == "cmis:document"]
            if page.entries:  # the last entry comes back first on the next page: remember it with the token
                last = page.entries[-1]
                boundary = [[last.object_id, last.change_time.isoformat(), last.change_type]]
            token = page.next_token or token
            with self.store.session() as session:
                self._apply(session, docs, result)
                self._delete(session, deleted, result)
                self.save_cursor(session, {"token": token, "boundary": boundary})
                session.commit()
            if not page.has_more:
                break
        return result

    # -- one page -------------------------------------------------------------------------------

    def _apply(self, session: Session, objects: list[CmisObject], result: PullResult) -> None:
        """Store a page of documents, link them, settle their retention and canonical links."""
        if not objects:
            return
        result.read += len(objects)
        ids = [o.object_id for o in objects]
        existing = {d.object_id: d for d in session.scalars(select(EdrmsDocument).where(
            EdrmsDocument.repository == self.name, EdrmsDocument.object_id.in_(ids)))}
        found = {o.object_id: FoundIds.from_properties(o.properties, self.names) for o in objects}
        index = IdentifierIndex(session, self.settings.client_id_system)
        index.load(found.values())
        manual = self._manual(session, [d.id for d in existing.values()])
        active = self._active(session, [d.id for d in existing.values() if d.status == "linked"])
        work: list[tuple[EdrmsDocument, tuple[str | None, str | None, str | None, str | None], FoundIds,
                         CmisObject]] = []
        new_docs: list[EdrmsDocument] = []  # kept out of the session: inserted in bulk once settled
        new_links: list[tuple[EdrmsDocument, dict[str, Any]]] = []
        now = utcnow()
        for obj in objects:
            doc = existing.get(obj.object_id)
            if doc is not None and doc.change_token == obj.change_token and doc.modified == obj.modified:
                result.unchanged += 1
                continue
            if doc is None:
                doc = EdrmsDocument(repository=self.name, object_id=obj.object_id, first_seen=now, status="orphan",
                                    written={}, legal_holds=[])
                new_docs.append(doc)
                result.new += 1
            else:
                result.changed += 1
            ids_before = (doc.person_ref, doc.nhs_number, doc.client_ref, doc.case_ref)
            self._describe(doc, obj, found[obj.object_id])
            work.append((doc, ids_before, found[obj.object_id], obj))
        if not work:
            return
        stated: dict[str, str | None] = {}
        for doc, ids_before, ids_now, obj in work:
            stated[doc.object_id] = _text(obj.properties.get(self.names.get("record_class", "")))
            if doc.id is not None and doc.id in manual:
                result.linked += 1
                continue
            if doc.orphan_reason == "UNLINKED" and ids_before == (doc.person_ref, doc.nhs_number, doc.client_ref,
                                                                  doc.case_ref):
                result.orphans += 1
                continue
            self._link(doc, index.resolve(ids_now), result, now,
                       active.get(doc.id, []) if doc.id is not None else [], new_links)
        settled = settle(session, [doc for doc, *_ in work], self.schedule, stated_classes=stated,
                         known_facts=self.facts)
        result.events += settled.created + settled.updated
        self._insert(session, new_docs, new_links)

    @staticmethod
    def _insert(session: Session, docs: list[EdrmsDocument], links: list[tuple[EdrmsDocument, dict[str, Any]]]) -> None:
        """A page's new documents (with their retention, as settled) and new links, inserted in bulk.

        The ORM's unit of work inserted them one row at a time, which cost more than the rest of the page;
        the rows are the same (every column given, as the ORM would have given it)."""
        if docs:
            rows = [[getattr(doc, c) for c in _DOC_COLUMNS] for doc in docs]
            ids = None
            if session.get_bind().dialect.name == "sqlite":
                bulk_insert(session, EdrmsDocument, _DOC_COLUMNS, rows)
                ids = rowids_of_last_insert(session, EdrmsDocument, len(docs))
                if ids is None:  # ids not consecutive: look them up by their keys
                    by_key = {oid: did for oid, did in session.execute(
                        select(EdrmsDocument.object_id, EdrmsDocument.id).where(
                            EdrmsDocument.repository == docs[0].repository,
                            EdrmsDocument.object_id.in_([d.object_id for d in docs])))}
                    ids = [by_key[d.object_id] for d in docs]
            else:
                ids = [row[0] for row in insert_returning(session, EdrmsDocument, _DOC_COLUMNS, rows, ("id",))]
            for doc, new_id in zip(docs, ids, strict=True):
                doc.id = new_id
        bulk_insert(session, EdrmsLink, _LINK_COLUMNS,
                    [[doc.id, *(values[c] for c in _LINK_COLUMNS[1:])] for doc, values in links])

    @staticmethod
    def _active(session: Session, doc_ids: list[int]) -> dict[int, list[EdrmsLink]]:
        out: dict[int, list[EdrmsLink]] = {}
        for start in range(0, len(doc_ids), 500):
            for link in session.scalars(select(EdrmsLink).where(
                    EdrmsLink.document_id.in_(doc_ids[start:start + 500]), EdrmsLink.active.is_(True))
                    .order_by(EdrmsLink.id)):
                out.setdefault(link.document_id, []).append(link)
        return out

    def _describe(self, doc: EdrmsDocument, obj: CmisObject, ids: FoundIds) -> None:
        props, names = obj.properties, self.names
        created = props.get("cmis:creationDate")
        doc.name = str(props.get("cmis:name") or obj.object_id)[:255]
        doc.document_type = _text(props.get(names.get("document_type", "")))
        doc.author = _text(props.get(names.get("author", ""))) or _text(props.get("cmis:createdBy"))
        content = obj.content
        doc.mime_type = content.mime_type if content else None
        doc.content_length = content.length if content else None
        doc.created = created if isinstance(created, datetime) else None
        doc.modified = obj.modified
        doc.change_token = obj.change_token
        doc.url = self.repository.object_url(obj.object_id)
        doc.person_ref, doc.nhs_number, doc.client_ref, doc.case_ref = (
            ids.person_ref, ids.nhs_number, ids.client_ref, ids.case_ref)
        doc.written = {key: _json(props.get(names[key])) for key in
                       ("person_id", "case_id", "record_class", "retention_date", "legal_hold") if key in names}
        if doc.status == "deleted":
            doc.status = "orphan"
        doc.updated_at = utcnow()

    def _manual(self, session: Session, doc_ids: list[int]) -> set[int]:
        if not doc_ids:
            return set()
        return set(session.scalars(select(EdrmsLink.document_id).where(
            EdrmsLink.document_id.in_(doc_ids), EdrmsLink.active.is_(True), EdrmsLink.method == "manual")))

    @staticmethod
    def _link(doc: EdrmsDocument, resolution: Any, result: PullResult, now: datetime, current: list[EdrmsLink],
              new_links: list[tuple[EdrmsDocument, dict[str, Any]]]) -> None:
        if resolution.linked:
            same = [k for k in current if k.person_id == resolution.person_id
                    and k.episode_id == resolution.episode_id]
            for old in current:
                if old not in same:
                    end_link(old, PULL_USER, "the document's identifiers now point elsewhere", now)
            if not same:
                new_links.append((doc, {"person_id": resolution.person_id, "episode_id": resolution.episode_id,
                                        "method": "pull", "basis": resolution.basis[:40],
                                        "reason": f"identifiers in the document's properties: {resolution.basis}",
                                        "created_by": PULL_USER, "created_at": now, "active": True}))
            doc.link_to(resolution.person_id, resolution.episode_id)
            result.linked += 1
        else:
            for old in current:
                end_link(old, PULL_USER, f"the document's identifiers no longer link it ({resolution.reason})", now)
            doc.make_orphan(resolution.reason)
            result.orphans += 1
            result.reasons[resolution.reason] = result.reasons.get(resolution.reason, 0) + 1

    def _delete(self, session: Session, object_ids: set[str], result: PullResult) -> None:
        if not object_ids:
            return
        docs = list(session.scalars(select(EdrmsDocument).where(
            EdrmsDocument.repository == self.name, EdrmsDocument.object_id.in_(sorted(object_ids)))))
        now = utcnow()
        for doc in docs:
            for old in active_links(session, doc.id):
                end_link(old, PULL_USER, "the document was deleted in the EDRMS", now)
            doc.make_orphan(None, status="deleted")
            result.deleted += 1
        session.flush()
        settled = settle(session, docs, self.schedule)
        result.events += settled.created + settled.updated


_DOC_COLUMNS = tuple(c.name for c in EdrmsDocument.__table__.columns if c.name != "id")
_LINK_COLUMNS = ("document_id", "person_id", "episode_id", "method", "basis", "reason", "created_by", "created_at",
                 "active")


def _instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value in (None, "") else str(value)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date().isoformat()
    return value


def document_count(session: Session, repository: str) -> int:
    """How many documents of a repository the hub knows."""
    return int(session.scalar(select(func.count()).select_from(EdrmsDocument).where(
        EdrmsDocument.repository == repository)) or 0)
