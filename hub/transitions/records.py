"""The one place transitions write canonical records (Transition, the continuity Flag) and their change events.

Everything here goes through :func:`write_canonical`, which has the signature of the core's
golden-record writer (``hub.store.writer.write_canonical``, helper i17). Until that writer is on
main this module carries the same contract, kept to the few lines transitions need: the entity
with its next version and content hash, a ``created``/``updated`` change event under the outbox
order lock. When the writer lands, this function is replaced by an import of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.delivery.fanout import hold_outbox_order
from hub.model import Canonical
from hub.pipeline import content_hash, dumps, entity_id_for, event_id_for
from hub.store.tables import Entity, OutboxEvent, utcnow


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a canonical record came from: the source system, its stream and its own key."""

    source: str
    stream: str
    source_id: str
    payload: Any = None
    modified: str | None = None


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What a write did: ``created``, ``updated`` or ``unchanged``, the id and version, the event appended."""

    kind: str
    entity_id: str
    version: int
    event_id: str | None


def write_canonical(session: Session, model: Canonical, provenance: Provenance, *,
                    at: datetime | None = None) -> WriteOutcome:
    """Write one canonical record and its change event in the caller's transaction (the caller commits)."""
    now = at or utcnow()
    document = model.model_dump(mode="json", exclude_none=True, exclude={"id"})
    body = dumps(document)
    digest = content_hash(body)
    entity_id = model.id or entity_id_for(provenance.source, provenance.stream, provenance.source_id)
    person_id = document.get("person_id")
    entity = session.get(Entity, entity_id)
    if entity is not None and entity.content_hash == digest:
        return WriteOutcome("unchanged", entity_id, entity.version, None)
    if entity is None:
        kind, version = "created", 1
        session.add(Entity(id=entity_id, entity_type=model.entity_type, person_id=person_id, version=1,
                           content_hash=digest, document=body.decode(), created_at=now, updated_at=now))
    else:
        kind, version = "updated", entity.version + 1
        entity.document, entity.content_hash, entity.version, entity.updated_at = body.decode(), digest, version, now
    session.flush()
    hold_outbox_order(session)
    event_id = event_id_for(entity_id, version, kind)
    session.add(OutboxEvent(
        event_id=event_id, entity_type=model.entity_type, entity_id=entity_id, person_id=person_id, kind=kind,
        version=version, ordering_key=person_id or entity_id, source=provenance.source, created_at=now,
        status="pending", payload=dumps({"id": entity_id, "person_id": person_id, **document}).decode()))
    session.flush()
    return WriteOutcome(kind, entity_id, version, event_id)
