"""Identity resolution in the store: links with their evidence, the review queue, merge history.

* ``match_links`` - every decision about a pair, by the engine or by a person, with its
  score and per-field evidence; one row per ordered pair, so a decision is remembered.
* ``match_reviews`` - pairs the engine was unsure of, waiting for a person; one row per
  ordered pair, so the same pair is never asked twice.
* ``person_merges`` - each merge with a snapshot of both persons and of every record it
  re-pointed, so :func:`unmerge` restores both exactly.
* ``identity_models`` - the m and u the resolver learned per source in a sync, so a restarted
  process scores a source's records as the running one did (:func:`save_model`, :func:`stored_model`).

Every function works inside the caller's session (one transaction). Merging, unmerging and a
reviewer's decision live in :mod:`hub.store.merges` (they write through the golden-record writer).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.store.bulk import PreparedStatement
from hub.store.tables import (
    Base,
    BigId,
    utcnow,
)

PERSON = "Person"


class Outcome(StrEnum):
    """What to do with a pair: join the records, ask a person, or keep them apart.

    The one vocabulary for a decision about a pair: the engine's outcomes and the
    ``decision`` column of ``match_links`` (stored as the value).
    """

    LINK = "link"
    REVIEW = "review"
    NO_LINK = "no_link"


OPEN, ACCEPTED, REJECTED = "open", "accepted", "rejected"
ENGINE = "engine"


class MatchLink(Base):
    """A decision about two records: linked or kept apart, by whom, with score and evidence.

    ``person_a`` is a golden person; ``person_b`` another person (the pair ordered so
    a < b) or a source record reference (``source/stream/source_id``) joined to person a.
    """

    __tablename__ = "match_links"
    __table_args__ = (UniqueConstraint("person_a", "person_b", name="uq_match_links_pair"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_a: Mapped[str] = mapped_column(String(36), index=True)
    person_b: Mapped[str] = mapped_column(String(200), index=True)
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    decision: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str] = mapped_column(String(128))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class MatchReview(Base):
    """A pair of persons the engine was unsure of, waiting for (or given) a person's decision."""

    __tablename__ = "match_reviews"
    __table_args__ = (
        UniqueConstraint("person_a", "person_b", name="uq_match_reviews_pair"),
        Index("ix_match_reviews_status_id", "status", "id"),
        Index("ix_match_reviews_person_b", "person_b"),  # the access decision's reviews of a person
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_a: Mapped[str] = mapped_column(String(36))
    person_b: Mapped[str] = mapped_column(String(36))
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(128))
    merge_id: Mapped[int | None] = mapped_column(ForeignKey("person_merges.id"))


class PersonMerge(Base):
    """One merge of two persons, with everything needed to undo it exactly."""

    __tablename__ = "person_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    survivor_id: Mapped[str] = mapped_column(String(36), index=True)
    merged_id: Mapped[str] = mapped_column(String(36), index=True)
    merged_by: Mapped[str] = mapped_column(String(128))
    merged_at: Mapped[datetime] = mapped_column(default=utcnow)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="merged")
    unmerged_by: Mapped[str | None] = mapped_column(String(128))
    unmerged_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)


class IdentityModel(Base):
    """The match model the resolver last learned for a source (``MatchModel.to_json``: m and u, no prior).

    ``fingerprint`` is the identity configuration's (``hub.identity.model.model_fingerprint``) when
    it was learned: a model stored under another one is stale and not used.
    """

    __tablename__ = "identity_models"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(64))
    records: Mapped[int] = mapped_column(Integer)
    learned_at: Mapped[datetime] = mapped_column(default=utcnow)


def ordered_pair(a: str, b: str) -> tuple[str, str]:
    """The pair in its stored order, so (a, b) and (b, a) are one pair."""
    return (a, b) if a <= b else (b, a)


def record_link(
    session: Session,
    person_a: str,
    person_b: str,
    score: float,
    evidence: dict[str, Any],
    decision: str,
    decided_by: str,
) -> MatchLink:
    """Remember a decision about a pair (person pairs are ordered); a later one replaces it."""
    if len(person_b) <= 36:
        person_a, person_b = ordered_pair(person_a, person_b)
    link = session.scalar(
        select(MatchLink).where(MatchLink.person_a == person_a, MatchLink.person_b == person_b)
    )
    if link is None:
        link = MatchLink(person_a=person_a, person_b=person_b)
        session.add(link)
    link.score, link.evidence, link.decision = score, evidence, Outcome(decision).value
    link.decided_by, link.decided_at = decided_by, utcnow()
    session.flush()
    return link


def queue_review(
    session: Session, person_a: str, person_b: str, score: float, evidence: dict[str, Any]
) -> MatchReview | None:
    """Put a pair of persons before a reviewer; never the same pair twice.

    Returns the (new or existing) review, or None when the pair was already decided.
    """
    a, b = ordered_pair(person_a, person_b)
    existing = session.scalar(
        select(MatchReview).where(MatchReview.person_a == a, MatchReview.person_b == b)
    )
    if existing is not None:
        return existing
    decided = session.scalar(
        select(MatchLink.id).where(MatchLink.person_a == a, MatchLink.person_b == b)
    )
    if decided is not None:
        return None
    review = MatchReview(person_a=a, person_b=b, score=score, evidence=evidence, status=OPEN)
    session.add(review)
    session.flush()
    return review


def open_reviews(session: Session, limit: int = 50) -> list[MatchReview]:
    """The oldest open reviews first."""
    return list(
        session.scalars(
            select(MatchReview)
            .where(MatchReview.status == OPEN)
            .order_by(MatchReview.id)
            .limit(limit)
        )
    )


def record_links(session: Session, links: list[dict[str, Any]]) -> None:
    """Remember the engine's links of source records to persons, a batch at a time.

    Each item names ``person_a`` (the golden person), ``person_b`` (the record,
    ``source/stream/source_id``), ``score`` and ``evidence``. One delete and one
    insert for the whole batch: a record linked again replaces its earlier row.
    """
    if not links:
        return
    now = utcnow()
    refs = [link["person_b"] for link in links]
    for start in range(0, len(refs), 500):
        session.execute(delete(MatchLink).where(MatchLink.person_b.in_(refs[start : start + 500])))
    session.execute(
        insert(MatchLink),
        [
            {"person_a": link["person_a"], "person_b": link["person_b"], "score": link["score"],
             "evidence": link["evidence"], "decision": Outcome.LINK.value, "decided_by": ENGINE, "decided_at": now}
            for link in links
        ],
    )


def queue_reviews(session: Session, pairs: list[dict[str, Any]]) -> int:
    """Put pairs of persons before a reviewer, a batch at a time; returns how many were queued.

    Each item names ``person_a``, ``person_b``, ``score`` and ``evidence``. A pair already
    in the queue (open or decided) or already decided as a link is never queued again.
    """
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for pair in pairs:
        wanted.setdefault(ordered_pair(pair["person_a"], pair["person_b"]), pair)
    if not wanted:
        return 0
    firsts = sorted({a for a, _ in wanted})
    known: set[tuple[str, str]] = set()
    for table in (MatchReview, MatchLink):
        for start in range(0, len(firsts), 500):
            known.update(
                (a, b) for a, b in session.execute(
                    select(table.person_a, table.person_b).where(table.person_a.in_(firsts[start : start + 500]))
                )
            )
    now = utcnow()
    fresh = [
        {"person_a": a, "person_b": b, "score": pair["score"], "evidence": pair["evidence"], "status": OPEN,
         "created_at": now}
        for (a, b), pair in wanted.items() if (a, b) not in known
    ]
    if fresh:
        session.execute(insert(MatchReview), fresh)
    return len(fresh)


def save_model(session: Session, source: str, model: dict[str, Any], fingerprint: str, records: int) -> None:
    """Keep the model learned for ``source`` from ``records`` records, replacing the one before
    (in the caller's transaction: the batch that learned it)."""
    values = {"model": model, "fingerprint": fingerprint, "records": records, "learned_at": utcnow()}
    done = session.execute(update(IdentityModel).where(IdentityModel.source == source).values(**values))
    if done.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(insert(IdentityModel).values(source=source, **values))


def stored_model(session: Session, source: str, fingerprint: str) -> dict[str, Any] | None:
    """The model kept for ``source`` if it was learned under ``fingerprint``, else None (none, or stale)."""
    return session.scalar(select(IdentityModel.model).where(IdentityModel.source == source,
                                                            IdentityModel.fingerprint == fingerprint))


def learned_models(session: Session) -> list[dict[str, Any]]:
    """For operators: each source's stored model, when it was learned, from how many records, and its
    configuration fingerprint (m and u themselves are not shown)."""
    return [
        {"source": source, "learned_at": learned_at.isoformat(), "records": records, "fingerprint": fingerprint}
        for source, learned_at, records, fingerprint in session.execute(
            select(IdentityModel.source, IdentityModel.learned_at, IdentityModel.records, IdentityModel.fingerprint)
            .order_by(IdentityModel.source))
    ]


# Built once: the record open runs both for every answer, and building a statement (and adapting a cached
# compilation to the new statement's columns) would cost many times what running it does.
_PERSON_LINKS = PreparedStatement(
    select(MatchLink.person_a, MatchLink.person_b, MatchLink.score, MatchLink.decision, MatchLink.decided_by,
           MatchLink.decided_at, MatchLink.evidence)
    .where((MatchLink.person_a == bindparam("pid")) | (MatchLink.person_b == bindparam("pid")))
    .order_by(MatchLink.decided_at, MatchLink.id)
)
_PERSON_MERGES = PreparedStatement(
    select(PersonMerge.id, PersonMerge.survivor_id, PersonMerge.merged_id, PersonMerge.status,
           PersonMerge.merged_by, PersonMerge.merged_at, PersonMerge.unmerged_by, PersonMerge.unmerged_at)
    .where((PersonMerge.survivor_id == bindparam("pid")) | (PersonMerge.merged_id == bindparam("pid")))
    .order_by(PersonMerge.id)
)


def person_links(session: Session | Connection, person_id: str) -> dict[str, Any]:
    """Why the records of a person were joined: each link with its score and per-field evidence.

    ``records`` are source records the engine joined to this person (``source/stream/source_id``);
    ``decisions`` are a person's decisions about this person and another (accepted reviews,
    merges, and pairs ruled apart); ``merges`` are merges into or out of this person.
    Evidence holds comparison levels and weights only, never the person's details.
    Column selects, so a request's session and the hot routes' bare connection both serve.
    """
    records, decisions = [], []
    for person_a, person_b, score, decision, decided_by, decided_at, evidence in _PERSON_LINKS.all(
            session, {"pid": person_id}):
        entry = {"score": score, "decision": decision, "decided_by": decided_by,
                 "decided_at": decided_at.isoformat(), "evidence": evidence}
        if "/" in person_b:
            source, _, rest = person_b.partition("/")
            stream, _, source_id = rest.partition("/")
            records.append({"source": source, "stream": stream, "source_id": source_id, **entry})
        else:
            other = person_b if person_a == person_id else person_a
            decisions.append({"other_person": other, **entry})
    merges = [
        {"id": mid, "survivor": survivor, "merged": merged, "status": status, "merged_by": merged_by,
         "merged_at": merged_at.isoformat(), "unmerged_by": unmerged_by,
         "unmerged_at": unmerged_at.isoformat() if unmerged_at else None}
        for mid, survivor, merged, status, merged_by, merged_at, unmerged_by, unmerged_at in _PERSON_MERGES.all(
            session, {"pid": person_id})
    ]
    return {"records": records, "decisions": decisions, "merges": merges}


def identity_status(session: Session) -> dict[str, int]:
    """Counts for operators: records joined by the engine, pairs waiting for a reviewer, merges standing."""
    return {
        "linked_records": session.scalar(
            select(func.count()).select_from(MatchLink).where(MatchLink.decided_by == ENGINE,
                                                               MatchLink.decision == Outcome.LINK.value)) or 0,
        "open_reviews": session.scalar(
            select(func.count()).select_from(MatchReview).where(MatchReview.status == OPEN)) or 0,
        "merges": session.scalar(
            select(func.count()).select_from(PersonMerge).where(PersonMerge.status == "merged")) or 0,
    }
