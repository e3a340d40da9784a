"""Stage 6, emit: one change event per entity whose golden document the batch changed.

Appended through :func:`hub.store.writer.append_events` (the outbox-order lock, the lane from the
ordering key), with the deterministic id of (entity, version, kind) and the golden document as its
payload; then identity hears what the batch wrote to the person index (after the outbox rows, so its
in-memory index can tell its own batch's ``Person`` events from another writer's).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from hub.identity.resolver import PersonResolver
from hub.pipeline.record import BatchResult
from hub.pipeline.write import Written
from hub.store.canonical import canonical_json, event_id_for
from hub.store.writer import PERSON_INDEX_COLUMNS, NewEvent, append_events


def emit(session: Session, source: str, written: Written, now: datetime, result: BatchResult,
         resolver: PersonResolver) -> int:
    """Append the batch's change events; returns how many ``Person`` events it wrote."""
    events = [NewEvent(event_id_for(c.entity_id, c.version, c.kind), c.entity_type, c.entity_id, c.person_id, c.kind,
                       c.version, c.person_id or c.entity_id, source, now,
                       canonical_json({"id": c.entity_id, "person_id": c.person_id, **c.golden}))
              for c in written.changes]
    result.events += append_events(session, events)
    if written.persons is not None:  # after the outbox rows: see hub.identity.blocks
        resolver.persons_written(session, PERSON_INDEX_COLUMNS, *written.persons)
    return sum(1 for c in written.changes if c.entity_type == "Person")
