"""What records managers see and do, shared by the API and the page: documents, orphans with suggested
people, links made and ended, the retention report.

Everything that reveals a person goes through the hub's access decision (:class:`hub.access.decision.Access`):
a document linked to someone the caller may not see is not found; a suggested person the caller may not
see is not suggested. Suggestions come from the identity engine, scoring the names and dates a document's
title and properties carry against the hub's people.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from edrms.records import document_page, get_document, links_of, orphan_page
from hub.access.decision import Access, load_subjects
from hub.access.policy import Policy
from hub.access.rules import Caller
from hub.errors import NotFound
from hub.identity import MatchRecord, PersonCandidate, PersonResolver
from hub.store.documents import EdrmsDocument, EdrmsLink

_DATE = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\b|\b(\d{4})-(\d{2})-(\d{2})\b")
_NAME = re.compile(r"\b([A-Z][a-z'\-]+)\s+((?:[A-Z][a-z'\-]+\s+)*)([A-Z][a-z'\-]+)\b")
# How a document's hints are named to the identity engine (suggestions record nothing).
_SOURCE, _STREAM = "edrms", "documents"


def visible_people(session: Session, policy: Policy, caller: Caller, person_ids: Iterable[str]) -> set[str]:
    """The people of ``person_ids`` the caller may see, by the hub's one access decision."""
    ids = [p for p in dict.fromkeys(person_ids) if p]
    if not ids:
        return set()
    # Open to the caller without breaking glass: a document list never breaks glass.
    return {pid for pid, d in Access(session, policy, caller).people(ids, exact=False).items() if d.open}


def require_person(session: Session, policy: Policy, caller: Caller, person_id: str) -> None:
    """NotFound when the caller may not see the person (as the record itself would answer)."""
    if person_id not in visible_people(session, policy, caller, [person_id]):
        raise NotFound(f"no person {person_id}")


def hints(title: str, record_id: str = "document") -> MatchRecord | None:
    """A name and a birth date found in a document's title, as a record the identity engine can score."""
    stem = title.rsplit(".", 1)[0]
    born = None
    if found := _DATE.search(stem):
        if found[3]:
            day, month, year = int(found[1]), int(found[2]), int(found[3])
        else:
            year, month, day = int(found[4]), int(found[5]), int(found[6])
        try:
            born = date(year, month, day)
        except ValueError:
            born = None
        stem = stem[:found.start()] + stem[found.end():]
    tail = stem.rsplit(" - ", 1)[-1] if " - " in stem else stem
    name = _NAME.search(tail)
    if name is None and born is None:
        return None
    given = name[1] if name else None
    family = name[3] if name else None
    return MatchRecord(id=record_id, given_name=given, family_name=family, birth_date=born)


@functools.lru_cache(maxsize=1)
def _resolver() -> PersonResolver:
    return PersonResolver()


@dataclass(frozen=True)
class Suggestion:
    """A person the identity engine thinks a document may be about."""

    person_id: str
    score: float
    name: str
    birth_date: str | None


def suggestions(session: Session, policy: Policy, caller: Caller, docs: Sequence[EdrmsDocument],
                limit: int = 3) -> dict[int, list[Suggestion]]:
    """Up to ``limit`` people per document, best first, only among people the caller may see.

    The people the identity engine would link the document's hints to or put before a reviewer
    (:meth:`~hub.identity.resolver.PersonResolver.resolve_batch`'s candidates); the documents of one
    call are compared with each other too, and a document is never suggested for another.
    """
    wanted: list[tuple[int, PersonCandidate]] = []
    for doc in docs:
        ref = f"{_SOURCE}/{_STREAM}/{doc.id}"
        if (record := hints(doc.name, ref)) is not None:
            wanted.append((doc.id, PersonCandidate(_SOURCE, _STREAM, str(doc.id), record, ref)))
    if not wanted:
        return {}
    answers = _resolver().resolve_batch(session, [c for _, c in wanted])
    documents = {c.new_id for _, c in wanted}
    ranked = {doc_id: [(c.person_id, c.score) for c in answer.candidates if c.person_id not in documents]
              for (doc_id, _), answer in zip(wanted, answers, strict=True)}
    everyone = {pid for pairs in ranked.values() for pid, _ in pairs}
    allowed = visible_people(session, policy, caller, everyone)
    people = {pid: s.document for pid, s in load_subjects(session, sorted(allowed)).items() if s.document}
    out: dict[int, list[Suggestion]] = {}
    for doc_id, pairs in ranked.items():
        picks = []
        for pid, score in pairs:
            if pid in allowed and pid in people and not people[pid].get("merged_into"):
                name = (people[pid].get("names") or [{}])[0]
                display = " ".join([*(name.get("given") or []), name.get("family") or ""]).strip()
                picks.append(Suggestion(pid, round(score, 3), display, people[pid].get("birth_date")))
            if len(picks) == limit:
                break
        out[doc_id] = picks
    return out


def _found_kinds(doc: EdrmsDocument) -> list[str]:
    return [kind for kind, value in (("person_id", doc.person_ref), ("nhs_number", doc.nhs_number),
                                     ("client_id", doc.client_ref), ("case_id", doc.case_ref)) if value]


def link_json(link: EdrmsLink) -> dict[str, Any]:
    """A link with who made it, when and why, and who ended it, when and why."""
    return {"id": link.id, "person_id": link.person_id, "episode_id": link.episode_id, "method": link.method,
            "basis": link.basis, "reason": link.reason, "created_by": link.created_by,
            "created_at": link.created_at.isoformat(), "active": link.active, "ended_by": link.ended_by,
            "ended_at": link.ended_at.isoformat() if link.ended_at else None, "end_reason": link.end_reason}


def document_json(doc: EdrmsDocument, links: Sequence[EdrmsLink] | None = None,
                  suggested: Sequence[Suggestion] | None = None) -> dict[str, Any]:
    """A document as the API answers it (which identifiers were found, never their values)."""
    body: dict[str, Any] = {
        "id": doc.id, "repository": doc.repository, "object_id": doc.object_id, "title": doc.name,
        "document_type": doc.document_type, "author": doc.author, "mime_type": doc.mime_type,
        "content_length": doc.content_length, "created": doc.created.isoformat() if doc.created else None,
        "modified": doc.modified.isoformat() if doc.modified else None, "url": doc.url, "status": doc.status,
        "orphan_reason": doc.orphan_reason, "identifiers_found": _found_kinds(doc), "person_id": doc.person_id,
        "episode_id": doc.episode_id, "record_class": doc.record_class,
        "review_date": doc.retain_until.isoformat() if doc.retain_until else None,
        "retention_rule": doc.retention_rule, "legal_holds": list(doc.legal_holds or []),
    }
    if links is not None:
        body["links"] = [link_json(k) for k in links]
    if suggested is not None:
        body["suggestions"] = [s.__dict__ for s in suggested]
    return body


def list_orphans(session: Session, policy: Policy, caller: Caller, *, after: int | None, limit: int,
                 suggest: bool) -> dict[str, Any]:
    """A page of orphans (with suggested people when asked), the total, and the cursor of the next page."""
    docs, total = orphan_page(session, after=after, limit=limit)
    suggested = suggestions(session, policy, caller, docs) if suggest else {}
    return {"total": total, "documents": [document_json(d, suggested=suggested.get(d.id, []) if suggest else None)
                                          for d in docs],
            "next": docs[-1].id if len(docs) == limit else None}


def list_documents(session: Session, policy: Policy, caller: Caller, *, person_id: str | None, after: int | None,
                   limit: int) -> dict[str, Any]:
    """A page of documents (one person's when named), leaving out those of people the caller may not see."""
    if person_id is not None:
        require_person(session, policy, caller, person_id)
    docs = document_page(session, after=after, limit=limit, person_ids=[person_id] if person_id else None)
    allowed = visible_people(session, policy, caller, [d.person_id for d in docs if d.person_id])
    shown = [d for d in docs if d.person_id is None or d.person_id in allowed]
    return {"documents": [document_json(d) for d in shown], "next": docs[-1].id if len(docs) == limit else None}


def show_document(session: Session, policy: Policy, caller: Caller, document_id: int) -> dict[str, Any]:
    """One document with its links; not found when it is linked to someone the caller may not see."""
    doc = get_document(session, document_id)
    links = links_of(session, [doc.id]).get(doc.id, [])
    people = {k.person_id for k in links} | ({doc.person_id} if doc.person_id else set())
    allowed = visible_people(session, policy, caller, people)
    if doc.person_id and doc.person_id not in allowed:
        raise NotFound(f"no document {document_id}")
    return document_json(doc, [k for k in links if k.person_id in allowed])


def retention_report(session: Session, *, due_before: date, limit: int = 1000) -> list[dict[str, Any]]:
    """Linked documents whose review date falls before ``due_before``: due for review, or held (and by what)."""
    rows = session.scalars(select(EdrmsDocument).where(
        EdrmsDocument.status == "linked", EdrmsDocument.retain_until.is_not(None),
        EdrmsDocument.retain_until < due_before).order_by(EdrmsDocument.retain_until, EdrmsDocument.id).limit(limit))
    return [{"id": d.id, "object_id": d.object_id, "title": d.name, "person_id": d.person_id,
             "episode_id": d.episode_id, "record_class": d.record_class, "review_date": d.retain_until.isoformat()
             if d.retain_until else None, "rule": d.retention_rule, "legal_holds": list(d.legal_holds or []),
             "action": "held" if d.legal_holds else "review", "url": d.url} for d in rows]


def visible_report(session: Session, policy: Policy, caller: Caller, rows: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    """The report's rows about people the caller may see."""
    allowed = visible_people(session, policy, caller, [r["person_id"] for r in rows])
    return [r for r in rows if r["person_id"] in allowed]
