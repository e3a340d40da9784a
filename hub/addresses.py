"""Keeping people's addresses true when the gazetteer retires or replaces a UPRN.

A UPRN replaced by exactly one successor moves every person living at it to the
successor (the source's own address text is never touched). A UPRN retired with
no single successor leaves the address as it was and raises a data-quality
issue for a person to resolve. A move gives the golden record a new version, its person
index (identity's ``match_fields`` included) and a change event, in one transaction,
through the golden-record writer (:mod:`hub.store.writer`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.store.quality import DataQualityIssue
from hub.store.tables import Entity, SourceLink, utcnow
from hub.store.writer import append_events, entity_event, revise_contribution, revise_entity

SOURCE = "gazetteer"


@dataclass(frozen=True, slots=True)
class UprnChange:
    """A UPRN the gazetteer took out of use, why, and what (if anything) replaced it."""

    uprn: str
    reason: str
    successors: tuple[str, ...] = ()


@dataclass
class AddressEffects:
    """What a batch of UPRN changes did to people's records."""

    moved: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)


def apply_uprn_changes(session: Session, changes: Iterable[UprnChange]) -> AddressEffects:
    """Re-point or flag every person whose addresses carry a retired UPRN (caller commits)."""
    effects = AddressEffects()
    for change in changes:
        successor = change.successors[0] if len(change.successors) == 1 else None
        needle = f'"uprn":"{change.uprn}"'
        for entity in session.scalars(
            select(Entity).where(Entity.entity_type == "Person", Entity.document.contains(needle))
        ):
            if successor:
                _move(session, entity, change, successor)
                effects.moved.append(entity.id)
            else:
                session.add(DataQualityIssue(
                    entity_id=entity.id, kind="UPRN_RETIRED",
                    message=f"address UPRN {change.uprn} was {change.reason} with no single successor",
                    detail={"uprn": change.uprn, "reason": change.reason, "successors": list(change.successors)},
                ))
                effects.flagged.append(entity.id)
    session.flush()
    return effects


def _repoint(document: dict[str, Any], old: str, new: str) -> bool:
    changed = False
    for address in document.get("addresses", []):
        if address.get("uprn") == old:
            address["uprn"] = new
            changed = True
    return changed


def _move(session: Session, entity: Entity, change: UprnChange, successor: str) -> None:
    now = utcnow()
    document = orjson.loads(entity.document)
    if not _repoint(document, change.uprn, successor):
        return
    for link in session.scalars(select(SourceLink).where(SourceLink.entity_id == entity.id)):
        contribution = orjson.loads(link.document)
        if _repoint(contribution, change.uprn, successor):
            revise_contribution(session, link, contribution)
    revise_entity(session, entity, document, at=now)
    append_events(session, [entity_event(entity, "updated", source=SOURCE, at=now)])
