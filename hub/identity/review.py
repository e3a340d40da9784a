"""The review queue and merges as services for the API and the pages.

A reviewer (role ``admin`` or ``data_quality``) lists the pairs the engine was
unsure of, sees both people side by side with the evidence, and accepts (the two
are merged) or rejects (they stay apart, and the pair is never asked again).
Merges can be made directly and undone. Every function works in the caller's
transaction; merge and unmerge write their change events to the outbox there.
A person under a seal that does not name the reviewer's role or team is shown
as sealed, without details.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.access.policy import Policy
from hub.access.rules import Caller, decide, is_hidden, load_people
from hub.errors import Forbidden, NotFound
from hub.record import summarise
from hub.store.identity import (
    LINK,
    OPEN,
    MatchReview,
    PersonMerge,
    person_links,
    record_link,
)
from hub.store.merges import decide as decide_review
from hub.store.merges import merge, unmerge
from hub.store.tables import Entity, SourceLink

REVIEWER_ROLES = ("admin", "data_quality")
STATUSES = ("open", "accepted", "rejected")


def person_cards(session: Session, caller: Caller, person_ids: list[str]) -> dict[str, dict[str, Any]]:
    """What a reviewer sees of each person: the search line, the source records joined, or 'sealed'."""
    ids = list(dict.fromkeys(person_ids))
    facts = load_people(session, ids)[1]
    docs = dict(session.execute(select(Entity.id, Entity.document).where(Entity.id.in_(ids))).all())
    sources: dict[str, list[str]] = {pid: [] for pid in ids}
    for entity_id, source, stream, source_id in session.execute(
        select(SourceLink.entity_id, SourceLink.source, SourceLink.stream, SourceLink.source_id)
        .where(SourceLink.entity_id.in_(ids)).order_by(SourceLink.id)
    ):
        sources[entity_id].append(f"{source}/{stream}/{source_id}")
    cards: dict[str, dict[str, Any]] = {}
    for pid in ids:
        if pid not in docs:
            cards[pid] = {"id": pid, "sealed": False, "missing": True, "name": "no longer held"}
        elif is_hidden(facts[pid], caller):
            cards[pid] = {"id": pid, "sealed": True, "name": "sealed record"}
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
        "person_a": cards.get(review.person_a, {"id": review.person_a}),
        "person_b": cards.get(review.person_b, {"id": review.person_b}),
    }


def list_reviews(session: Session, caller: Caller, status: str = OPEN, limit: int = 50,
                 after: int | None = None) -> list[dict[str, Any]]:
    """Reviews of one status, oldest first (after id ``after``), each with both people and the evidence."""
    stmt = select(MatchReview).where(MatchReview.status == status).order_by(MatchReview.id).limit(limit)
    if after is not None:
        stmt = stmt.where(MatchReview.id > after)
    reviews = list(session.scalars(stmt))
    cards = person_cards(session, caller, [p for r in reviews for p in (r.person_a, r.person_b)])
    return [review_view(r, cards) for r in reviews]


def show_review(session: Session, caller: Caller, review_id: int) -> dict[str, Any]:
    """One review with both people and the evidence."""
    review = session.get(MatchReview, review_id)
    if review is None:
        raise NotFound(f"no review {review_id}")
    found = review_view(review, person_cards(session, caller, [review.person_a, review.person_b]))
    found["merge"] = show_merge(session, review.merge_id) if review.merge_id is not None else None
    return found


def decide_pair(session: Session, caller: Caller, review_id: int, accept: bool) -> dict[str, Any]:
    """Accept (merge the two; the longer-known person survives) or reject (two people, never asked again).

    A reviewer who may not see one of the two (a seal that does not name them) may not decide.
    """
    pending = session.get(MatchReview, review_id)
    if pending is None:
        raise NotFound(f"no review {review_id}")
    facts = load_people(session, [pending.person_a, pending.person_b])[1]
    if any(is_hidden(f, caller) for f in facts.values()):
        raise Forbidden("a sealed record is in this pair: only a reviewer the seal names may decide")
    review = decide_review(session, review_id, accept, caller.user_id)
    return review_view(review, person_cards(session, caller, [review.person_a, review.person_b]))


def merge_view(history: PersonMerge) -> dict[str, Any]:
    """One merge as the API shows it."""
    return {
        "id": history.id, "survivor": history.survivor_id, "merged": history.merged_id, "status": history.status,
        "merged_by": history.merged_by, "merged_at": history.merged_at.isoformat(),
        "unmerged_by": history.unmerged_by,
        "unmerged_at": history.unmerged_at.isoformat() if history.unmerged_at else None,
        "records": [r["id"] for r in history.snapshot.get("records", [])],
    }


def merge_persons(session: Session, caller: Caller, survivor: str, merged: str) -> dict[str, Any]:
    """Fold ``merged`` into ``survivor`` (a reviewer's own decision, kept as a link with the merge)."""
    for pid in (survivor, merged):
        if is_hidden(load_people(session, [pid])[1][pid], caller):
            raise NotFound(f"no person {pid}")
    history = merge(session, survivor, merged, caller.user_id)
    record_link(session, survivor, merged, 1.0, {"reason": f"merged by a person (merge {history.id})"}, LINK,
                caller.user_id)
    return merge_view(history)


def show_merge(session: Session, merge_id: int) -> dict[str, Any]:
    """One merge and whether it still stands."""
    history = session.get(PersonMerge, merge_id)
    if history is None:
        raise NotFound(f"no merge {merge_id}")
    return merge_view(history)


def unmerge_persons(session: Session, caller: Caller, merge_id: int) -> dict[str, Any]:
    """Undo a merge exactly; the pair is remembered as two people."""
    return merge_view(unmerge(session, merge_id, caller.user_id))


def explain_person(session: Session, policy: Policy, caller: Caller, person_id: str) -> dict[str, Any]:
    """Why this person's records were joined (access checked as for reading the record)."""
    decide(policy, caller, load_people(session, [person_id])[1][person_id])
    if session.get(Entity, person_id) is None:
        raise NotFound(f"no person {person_id}")
    return {"id": person_id, **person_links(session, person_id)}
