"""The review queue and merges as services for the API and the pages.

A reviewer (role ``admin`` or ``data_quality``) lists the pairs the engine was
unsure of, sees both people side by side with the evidence, and accepts (the two
are merged) or rejects (they stay apart, and the pair is never asked again).
Merges can be made directly and undone. Every function works in the caller's
transaction; merge and unmerge write their change events to the outbox there.
Every person shown or changed goes through the access decision
(:mod:`hub.access.decision`): a review or merge naming someone the reviewer may
not know of (a seal that does not name their role or team, or a record held for
review beside such a person) answers as one never made.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.access.decision import Access
from hub.errors import NotFound
from hub.record import summarise
from hub.store.identity import (
    OPEN,
    MatchReview,
    Outcome,
    PersonMerge,
    person_links,
    record_link,
)
from hub.store.merges import answer_review, merge, unmerge
from hub.store.tables import Entity, SourceLink

REVIEWER_ROLES = ("admin", "data_quality")
STATUSES = ("open", "accepted", "rejected")


def person_cards(session: Session, access: Access, person_ids: list[str]) -> dict[str, dict[str, Any]]:
    """What a reviewer sees of each person: the search line and the source records joined.

    Only people the access decision lets the reviewer know of get a card; the
    callers show nothing that names anyone else.
    """
    ids = list(dict.fromkeys(person_ids))
    seen = access.visible(ids)
    docs = dict(session.execute(select(Entity.id, Entity.document).where(Entity.id.in_(ids))).all())
    sources: dict[str, list[str]] = {pid: [] for pid in ids}
    for entity_id, source, stream, source_id in session.execute(
        select(SourceLink.entity_id, SourceLink.source, SourceLink.stream, SourceLink.source_id)
        .where(SourceLink.entity_id.in_(ids)).order_by(SourceLink.id)
    ):
        sources[entity_id].append(f"{source}/{stream}/{source_id}")
    cards: dict[str, dict[str, Any]] = {}
    for pid in ids:
        if pid not in seen:
            continue
        if pid not in docs:
            cards[pid] = {"id": pid, "sealed": False, "missing": True, "name": "no longer held"}
        else:
            doc = orjson.loads(docs[pid])
            cards[pid] = {**summarise(pid, doc), "sealed": False, "records": sources[pid],
                          "merged_into": doc.get("merged_into")}
    return cards


def review_view(review: MatchReview, cards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One review as the API and the page show it."""
    return {
        "id": review.id, "status": review.status, "score": review.score, "evidence": review.evidence,
        "created_at": review.created_at.isoformat(),
        "decided_at": review.decided_at.isoformat() if review.decided_at else None,
        "decided_by": review.decided_by, "merge_id": review.merge_id,
        "person_a": cards[review.person_a], "person_b": cards[review.person_b],
    }


def list_reviews(session: Session, access: Access, status: str = OPEN, limit: int = 50,
                 after: int | None = None) -> list[dict[str, Any]]:
    """Reviews of one status, oldest first (after id ``after``), each with both people and the evidence.

    A review naming someone the reviewer may not know of (a sealed person the
    seal does not name them for, or a record held beside one) is not theirs to
    see: it goes only to reviewers the seal names.
    """
    found: list[dict[str, Any]] = []
    while len(found) < limit:
        stmt = select(MatchReview).where(MatchReview.status == status).order_by(MatchReview.id).limit(limit)
        if after is not None:
            stmt = stmt.where(MatchReview.id > after)
        reviews = list(session.scalars(stmt))
        if not reviews:
            break
        after = reviews[-1].id
        cards = person_cards(session, access, [p for r in reviews for p in (r.person_a, r.person_b)])
        found += [review_view(r, cards) for r in reviews if r.person_a in cards and r.person_b in cards]
    return found[:limit]


def _review(session: Session, access: Access, review_id: int) -> MatchReview:
    """A review the reviewer may see; the same NotFound as a review never made otherwise."""
    review = session.get(MatchReview, review_id)
    if review is None or len(access.visible([review.person_a, review.person_b])) < 2:
        raise NotFound(f"no review {review_id}")
    return review


def show_review(session: Session, access: Access, review_id: int) -> dict[str, Any]:
    """One review with both people and the evidence."""
    review = _review(session, access, review_id)
    found = review_view(review, person_cards(session, access, [review.person_a, review.person_b]))
    found["merge"] = show_merge(session, access, review.merge_id) if review.merge_id is not None else None
    return found


def decide_pair(session: Session, access: Access, review_id: int, accept: bool) -> dict[str, Any]:
    """Accept (merge the two; the longer-known person survives) or reject (two people, never asked again).

    Only a reviewer who may know of both people may decide (see :func:`list_reviews`).
    """
    _review(session, access, review_id)
    review = answer_review(session, review_id, accept, access.caller.user_id)
    return review_view(review, person_cards(session, access, [review.person_a, review.person_b]))


def merge_view(history: PersonMerge) -> dict[str, Any]:
    """One merge as the API shows it."""
    return {
        "id": history.id, "survivor": history.survivor_id, "merged": history.merged_id, "status": history.status,
        "merged_by": history.merged_by, "merged_at": history.merged_at.isoformat(),
        "unmerged_by": history.unmerged_by,
        "unmerged_at": history.unmerged_at.isoformat() if history.unmerged_at else None,
        "records": [r["id"] for r in history.snapshot.get("records", [])],
    }


def merge_persons(session: Session, access: Access, survivor: str, merged: str) -> dict[str, Any]:
    """Fold ``merged`` into ``survivor`` (a reviewer's own decision, kept as a link with the merge)."""
    for pid in (survivor, merged):
        access.require(access.person(pid, exact=False))
    history = merge(session, survivor, merged, access.caller.user_id)
    record_link(session, survivor, merged, 1.0, {"reason": f"merged by a person (merge {history.id})"}, Outcome.LINK,
                access.caller.user_id)
    return merge_view(history)


def _merge(session: Session, access: Access, merge_id: int) -> PersonMerge:
    """A merge of two people the caller may know of; the same NotFound as a merge never made otherwise."""
    history = session.get(PersonMerge, merge_id)
    if history is None or len(access.visible([history.survivor_id, history.merged_id])) < 2:
        raise NotFound(f"no merge {merge_id}")
    return history


def show_merge(session: Session, access: Access, merge_id: int) -> dict[str, Any]:
    """One merge and whether it still stands."""
    return merge_view(_merge(session, access, merge_id))


def unmerge_persons(session: Session, access: Access, merge_id: int) -> dict[str, Any]:
    """Undo a merge exactly; the pair is remembered as two people."""
    _merge(session, access, merge_id)
    return merge_view(unmerge(session, merge_id, access.caller.user_id))


def explain_person(session: Session, access: Access, person_id: str) -> dict[str, Any]:
    """Why this person's records were joined: read as the record is (an unknown id, or one the caller may not
    know of, is the same 404; break glass recorded as a record read's), naming no one the caller may not know of."""
    access.open(person_id)
    return {"id": person_id, **access.person_links(person_links(session, person_id))}
