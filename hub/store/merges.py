"""Merging two golden persons into one, and undoing it exactly; a reviewer's decision on a pair.

Both write through the golden-record writer (:mod:`hub.store.writer`): documents as
canonical JSON with their content hash and next version, the person index rebuilt from
the new documents, and ``merged`` / ``unmerged`` change events appended by
:func:`hub.store.writer.append_events` with deterministic ids (the person's id, its new
version and the kind). Every function works in the caller's session; the caller commits.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict, NotFound
from hub.store.identity import (
    ACCEPTED,
    OPEN,
    PERSON,
    REJECTED,
    MatchReview,
    Outcome,
    PersonMerge,
    record_link,
)
from hub.store.tables import Entity, PersonIdentifier, PersonIndex, SourceLink, utcnow
from hub.store.writer import (
    append_events,
    entity_event,
    repoint_provenance,
    repoint_record,
    restore_entity,
    restore_person_index,
    revise_entity,
)

SOURCE = "identity"
"""The ``source`` of the change events a merge or an unmerge writes."""


def answer_review(session: Session, pair_id: int, accept: bool, user: str) -> MatchReview:
    """A reviewer's answer: accept merges the two persons, reject keeps them apart for good."""
    review = session.get(MatchReview, pair_id)
    if review is None:
        raise NotFound(f"no review {pair_id}")
    if review.status != OPEN:
        raise Conflict(f"review {pair_id} was already {review.status}")
    review.status = ACCEPTED if accept else REJECTED
    review.decided_by, review.decided_at = user, utcnow()
    record_link(session, review.person_a, review.person_b, review.score, review.evidence,
                Outcome.LINK if accept else Outcome.NO_LINK, user)
    if accept:
        survivor, merged = _survivor_first(session, review.person_a, review.person_b)
        review.merge_id = merge(session, survivor, merged, user).id
    session.flush()
    return review


def _survivor_first(session: Session, a: str, b: str) -> tuple[str, str]:
    """The longer-known person survives (the older golden record keeps its id)."""
    first, second = _person(session, a), _person(session, b)
    return (a, b) if (first.created_at, a) <= (second.created_at, b) else (b, a)


def _person(session: Session, person_id: str) -> Entity:
    entity = session.get(Entity, person_id)
    if entity is None or entity.entity_type != PERSON:
        raise NotFound(f"no person {person_id}")
    return entity


def _entity_state(entity: Entity) -> dict[str, Any]:
    return {
        "id": entity.id,
        "person_id": entity.person_id,
        "version": entity.version,
        "content_hash": entity.content_hash,
        "document": entity.document,
    }


def _index_state(session: Session, person_id: str) -> dict[str, Any] | None:
    row = session.get(PersonIndex, person_id)
    if row is None:
        return None
    return {c.key: getattr(row, c.key) for c in PersonIndex.__table__.columns} | {
        "birth_date": row.birth_date.isoformat() if row.birth_date else None
    }


def merge(session: Session, survivor: str, merged: str, user: str) -> PersonMerge:
    """Fold ``merged`` into ``survivor``: its records, provenance and local ids move across.

    The merged person's document stays (marked ``merged_into``) and its index row is
    marked merged; a snapshot of both persons and of every re-pointed row is kept so
    :func:`unmerge` can restore them exactly. Emits a ``merged`` event for each person.
    """
    if survivor == merged:
        raise Conflict("a person cannot be merged into itself")
    kept, gone = _person(session, survivor), _person(session, merged)
    for entity in (kept, gone):
        if orjson.loads(entity.document).get("merged_into"):
            raise Conflict(f"person {entity.id} has already been merged away")
    records = list(session.scalars(select(Entity).where(Entity.person_id == merged, Entity.id != merged)))
    links = list(session.scalars(select(SourceLink).where(SourceLink.entity_id == merged)))
    identifiers = list(session.scalars(select(PersonIdentifier).where(PersonIdentifier.person_id == merged)))
    link_ids = [link.id for link in links]
    identifier_ids = [i.id for i in identifiers]
    snapshot = {
        "survivor": _entity_state(kept),
        "merged": _entity_state(gone),
        "index": {survivor: _index_state(session, survivor), merged: _index_state(session, merged)},
        "records": [_entity_state(e) for e in records],
        "source_links": link_ids,
        "identifiers": identifier_ids,
    }
    now = utcnow()
    for entity in records:
        document = orjson.loads(entity.document)
        if document.get("person_id") == merged:
            document["person_id"] = survivor
            revise_entity(session, entity, document, person_id=survivor, at=now)
        else:
            repoint_record(session, entity, survivor)
    repoint_provenance(session, link_ids, identifier_ids, survivor)

    kept_doc, gone_doc = orjson.loads(kept.document), orjson.loads(gone.document)
    known = {(i.get("system"), i.get("value")) for i in kept_doc.get("identifiers", [])}
    extra = [i for i in gone_doc.get("identifiers", []) if (i.get("system"), i.get("value")) not in known]
    if extra:
        kept_doc["identifiers"] = [*kept_doc.get("identifiers", []), *extra]
    revise_entity(session, kept, kept_doc, at=now)
    gone_doc["merged_into"] = survivor
    revise_entity(session, gone, gone_doc, at=now)

    history = PersonMerge(survivor_id=survivor, merged_id=merged, merged_by=user, snapshot=snapshot, status="merged")
    session.add(history)
    session.flush()
    payload = {"merge_id": history.id, "survivor": survivor, "merged": merged, "records": [e.id for e in records]}
    append_events(session, [entity_event(p, "merged", source=SOURCE, at=now, payload=payload) for p in (kept, gone)])
    session.flush()
    return history


def unmerge(session: Session, merge_id: int, user: str) -> PersonMerge:
    """Undo a merge: both persons, their index rows and every re-pointed row as they were.

    Documents come back byte for byte; versions move on (a downstream system must see
    a newer version). The pair is remembered as two people, and an ``unmerged`` event
    is emitted for each.
    """
    history = session.get(PersonMerge, merge_id)
    if history is None:
        raise NotFound(f"no merge {merge_id}")
    if history.status != "merged":
        raise Conflict(f"merge {merge_id} was already undone")
    snap = history.snapshot
    now = utcnow()
    restored: list[Entity] = []
    for state in (snap["survivor"], snap["merged"], *snap["records"]):
        entity = session.get(Entity, state["id"])
        if entity is None:
            raise NotFound(f"entity {state['id']} of merge {merge_id} no longer exists")
        restore_entity(session, entity, state, at=now)
        restored.append(entity)
    for person_id, state in snap["index"].items():
        restore_person_index(session, person_id, state)
    repoint_provenance(session, snap["source_links"], snap["identifiers"], history.merged_id)
    history.status, history.unmerged_by, history.unmerged_at = "unmerged", user, now
    record_link(session, history.survivor_id, history.merged_id, 0.0,
                {"reason": f"unmerged by a person (merge {merge_id})"}, Outcome.NO_LINK, user)
    payload = {"merge_id": merge_id, "survivor": history.survivor_id, "merged": history.merged_id,
               "records": [s["id"] for s in snap["records"]]}
    append_events(session, [entity_event(p, "unmerged", source=SOURCE, at=now, payload=payload)
                            for p in restored[:2]])
    session.flush()
    return history
