"""Stage 4, resolve: which canonical entity each record is.

A record whose source key already has a link keeps that entity. A new non-person record gets the
id derived from its own key. A new person record is resolved by identity (the resolver scores it
against the golden persons it may be, links, queues it for review or makes a new person); the
resolver keeps its links and reviews in the batch's transaction. Every record then knows the
person it belongs to.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from hub.identity.record import MatchRecord
from hub.identity.resolution import PersonCandidate
from hub.identity.resolver import PersonResolver
from hub.model import Person
from hub.pipeline.record import Record
from hub.store.canonical import entity_id_for


def resolve(session: Session, source: str, items: list[Record], resolver: PersonResolver) -> None:
    """Each valid record's ``entity_id`` (``fresh`` when new) and ``person_id``."""
    candidates: list[tuple[Record, PersonCandidate]] = []
    for item in items:
        if item.error is not None or item.model is None:
            continue
        if item.link is not None:
            item.entity_id = item.link.entity_id
            continue
        record = item.record
        own_id = entity_id_for(source, record.stream, record.source_id)
        if item.entity_type != Person.entity_type:
            item.entity_id, item.fresh = own_id, True
        else:
            assert isinstance(item.model, Person)
            candidates.append((item, PersonCandidate(source, record.stream, record.source_id,
                                                     MatchRecord.from_person(item.model, own_id), own_id)))
    if candidates:
        batch = [c for _, c in candidates]
        resolutions = resolver.resolve_batch(session, batch)
        for (item, cand), res in zip(candidates, resolutions, strict=True):
            item.entity_id = res.joins or cand.new_id
            item.fresh = res.joins is None
        resolver.record_batch(session, batch, resolutions)
    for item in items:
        if item.error is not None:
            continue
        if item.entity_type == Person.entity_type:
            item.person_id = item.entity_id
        elif item.model is not None:
            item.person_id = getattr(item.model, "person_id", None)
