"""The EDRMS link's records: documents, their links, retention, and the one place they reach the shared record.

:func:`settle` is the step every change of a document's link or facts ends in (the pull, a records
manager's link or unlink, a merge, a death, a case closed): it recomputes the document's retention from
its person's and case's facts and writes its canonical ``DocumentLink`` through the core's writer, which
appends the change event the EDRMS target turns into properties written back. A document with no person
is written with none, so it leaves every record it was on.

:func:`link_document` and :func:`unlink_document` are the records manager's acts: who, when and why are
kept on the link, and nothing is ever deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edrms.retention import EpisodeFacts, PersonFacts, Retention, Schedule
from hub.errors import Conflict, NotFound
from hub.model import DocumentLink
from hub.store.documents import EdrmsDocument, EdrmsLink
from hub.store.tables import Entity, PersonIndex, SourceLink, utcnow
from hub.store.writer import Provenance, write_canonical_batch

SOURCE = "edrms"
STREAM = "documents"
PULL_USER = "edrms-pull"


def _date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def person_facts(session: Session, person_ids: Iterable[str]) -> dict[str, PersonFacts]:
    """Birth, death and cases of each person, from their canonical Person and Episode documents."""
    ids = sorted(set(person_ids))
    facts: dict[str, PersonFacts] = {pid: PersonFacts() for pid in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for eid, pid, etype, document in session.execute(
                select(Entity.id, Entity.person_id, Entity.entity_type, Entity.document).where(
                    Entity.person_id.in_(chunk), Entity.entity_type.in_(("Person", "Episode")))):
            doc = orjson.loads(document)
            if pid is None:
                continue
            if etype == "Person":
                facts[pid].birth_date = _date(doc.get("birth_date"))
                facts[pid].death_date = _date(doc.get("death_date"))
            else:
                facts[pid].episodes.append(EpisodeFacts(eid, str(doc.get("kind", "")), doc.get("service_area"),
                                                        _date(doc.get("start")), _date(doc.get("end"))))
    return facts


def canonical_link(doc: EdrmsDocument) -> DocumentLink:
    """The document as the shared record holds it (nothing that changes on every crawl)."""
    return DocumentLink(
        person_id=doc.person_id, document_id=doc.object_id, title=doc.name, document_type=doc.document_type,
        episode_id=doc.episode_id if doc.person_id else None, created=doc.created,
        record_class=doc.record_class if doc.person_id else None,
        retain_until=doc.retain_until if doc.person_id else None,
        retention_rule=doc.retention_rule if doc.person_id else None,
        legal_holds=list(doc.legal_holds or []) if doc.person_id else [], author=doc.author, url=doc.url)


def _episode(facts: PersonFacts, episode_id: str | None) -> EpisodeFacts | None:
    return next((e for e in facts.episodes if e.id == episode_id), None) if episode_id else None


@dataclass
class Settled:
    """What :func:`settle` wrote: how many canonical links were created, updated or left as they were."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0


def settle(session: Session, docs: Sequence[EdrmsDocument], schedule: Schedule, *, on: date | None = None,
           stated_classes: dict[str, str | None] | None = None,
           known_facts: dict[str, PersonFacts] | None = None) -> Settled:
    """Recompute retention and write each document's canonical link (through the core's writer).

    ``stated_classes``: the record class each document's own properties state (by object id); otherwise
    the class last computed is kept as stated. ``known_facts``: people's facts already read in this
    transaction's run (a pull's pages share them; the facts do not change under a pull), filled in here.
    """
    today = on or utcnow().date()
    with session.no_autoflush:  # rows are written once, with their retention, by the writer's flush
        facts = known_facts if known_facts is not None else {}
        facts.update(person_facts(session, [d.person_id for d in docs if d.person_id and d.person_id not in facts]))
        known = _on_record(session, [_key(d) for d in docs if not d.person_id])
    out = Settled()
    batch = []
    for doc in docs:
        if not doc.person_id and _key(doc) not in known:  # never on anyone's record: nothing to take off
            out.unchanged += 1
            continue
        if doc.person_id:
            stated = (stated_classes or {}).get(doc.object_id, doc.record_class)
            person = facts.get(doc.person_id, PersonFacts())
            retention = schedule.compute(stated_class=stated, created=doc.created.date() if doc.created else None,
                                         person=person, episode=_episode(person, doc.episode_id), on=today)
            apply_retention(doc, retention)
        batch.append((canonical_link(doc), Provenance(SOURCE, STREAM, _key(doc), modified=doc.modified.isoformat()
                                                      if doc.modified else None)))
    for outcome in write_canonical_batch(session, batch):
        setattr(out, outcome.kind, getattr(out, outcome.kind) + 1)
    return out


def _key(doc: EdrmsDocument) -> str:
    return f"{doc.repository}:{doc.object_id}"


def _on_record(session: Session, keys: list[str]) -> set[str]:
    """Which of these documents the shared record already holds (as a canonical DocumentLink)."""
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        found.update(session.scalars(select(SourceLink.source_id).where(
            SourceLink.source == SOURCE, SourceLink.stream == STREAM, SourceLink.source_id.in_(chunk))))
    return found


def apply_retention(doc: EdrmsDocument, retention: Retention) -> None:
    """Keep the computed retention on the document's row."""
    doc.record_class = retention.record_class
    doc.retain_until = retention.review_date
    doc.retention_rule = retention.rule
    doc.legal_holds = list(retention.holds)


def get_document(session: Session, document_id: int) -> EdrmsDocument:
    """A document by the hub's id for it (NotFound otherwise)."""
    doc = session.get(EdrmsDocument, document_id)
    if doc is None:
        raise NotFound(f"no document {document_id}")
    return doc


def active_links(session: Session, document_id: int) -> list[EdrmsLink]:
    """The document's links in force."""
    return list(session.scalars(select(EdrmsLink).where(EdrmsLink.document_id == document_id,
                                                        EdrmsLink.active.is_(True)).order_by(EdrmsLink.id)))


def end_link(link: EdrmsLink, by: str, reason: str, at: datetime | None = None) -> None:
    """End a link, keeping who ended it, when and why."""
    link.active, link.ended_by, link.ended_at, link.end_reason = False, by, at or utcnow(), reason


def survivor_of(session: Session, person_id: str) -> str:
    """The person a merged-away person now lives on in (the person themself otherwise)."""
    seen = {person_id}
    current = person_id
    while True:
        into = session.scalar(select(PersonIndex.merged_into).where(PersonIndex.person_id == current))
        if not into or into in seen:
            return current
        seen.add(into)
        current = into


def link_document(session: Session, document_id: int, person_id: str, episode_id: str | None, reason: str,
                  user: str, schedule: Schedule) -> EdrmsLink:
    """A records manager links a document to a person (and case): any link in force is ended first."""
    doc = get_document(session, document_id)
    if doc.status == "deleted":
        raise Conflict(f"document {document_id} was deleted in the EDRMS")
    person = session.get(Entity, person_id)
    if person is None or person.entity_type != "Person":
        raise NotFound(f"no person {person_id}")
    target = survivor_of(session, person_id)
    if episode_id is not None:
        episode = session.get(Entity, episode_id)
        if episode is None or episode.entity_type != "Episode":
            raise NotFound(f"no case {episode_id}")
        if survivor_of(session, episode.person_id or "") != target:
            raise Conflict(f"case {episode_id} is not {person_id}'s")
    now = utcnow()
    for old in active_links(session, document_id):
        end_link(old, user, f"replaced by a records manager's link: {reason}", now)
    link = EdrmsLink(document_id=document_id, person_id=target, episode_id=episode_id, method="manual",
                     basis="records_manager", reason=reason, created_by=user, created_at=now, active=True)
    session.add(link)
    doc.link_to(target, episode_id)
    session.flush()
    settle(session, [doc], schedule)
    return link


def unlink_document(session: Session, document_id: int, link_id: int, reason: str, user: str,
                    schedule: Schedule) -> EdrmsLink:
    """A records manager removes a link; the document becomes an orphan (``UNLINKED``) and leaves the record."""
    doc = get_document(session, document_id)
    link = session.get(EdrmsLink, link_id)
    if link is None or link.document_id != document_id:
        raise NotFound(f"document {document_id} has no link {link_id}")
    if not link.active:
        raise Conflict(f"link {link_id} was already ended on {link.ended_at:%Y-%m-%d}")
    end_link(link, user, reason)
    if not active_links(session, document_id):
        doc.make_orphan("UNLINKED")
    session.flush()
    settle(session, [doc], schedule)
    return link


def orphan_page(session: Session, *, after: int | None, limit: int) -> tuple[list[EdrmsDocument], int]:
    """Orphans in id order after ``after``, and how many there are in all."""
    query = select(EdrmsDocument).where(EdrmsDocument.status == "orphan")
    if after is not None:
        query = query.where(EdrmsDocument.id > after)
    docs = list(session.scalars(query.order_by(EdrmsDocument.id).limit(limit)))
    total = session.scalar(select(func.count()).select_from(EdrmsDocument).where(EdrmsDocument.status == "orphan"))
    return docs, int(total or 0)


def document_page(session: Session, *, after: int | None, limit: int,
                  person_ids: Sequence[str] | None = None) -> list[EdrmsDocument]:
    """Documents in id order after ``after`` (only these people's when given)."""
    query = select(EdrmsDocument)
    if person_ids is not None:
        query = query.where(EdrmsDocument.person_id.in_(list(person_ids)))
    if after is not None:
        query = query.where(EdrmsDocument.id > after)
    return list(session.scalars(query.order_by(EdrmsDocument.id).limit(limit)))


def recently_linked(session: Session, limit: int) -> list[EdrmsDocument]:
    """Linked documents, the most recently changed first."""
    return list(session.scalars(select(EdrmsDocument).where(EdrmsDocument.status == "linked")
                                .order_by(EdrmsDocument.updated_at.desc(), EdrmsDocument.id.desc()).limit(limit)))


def links_of(session: Session, document_ids: Sequence[int]) -> dict[int, list[EdrmsLink]]:
    """Every link of these documents, in force or ended, oldest first."""
    out: dict[int, list[EdrmsLink]] = defaultdict(list)
    for link in session.scalars(select(EdrmsLink).where(EdrmsLink.document_id.in_(list(document_ids)))
                                .order_by(EdrmsLink.id)):
        out[link.document_id].append(link)
    return out


def counts(session: Session) -> dict[str, int]:
    """Documents by status (linked, orphan, deleted)."""
    return {status: int(n) for status, n in session.execute(
        select(EdrmsDocument.status, func.count()).group_by(EdrmsDocument.status))}
