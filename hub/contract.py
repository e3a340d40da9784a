"""The contract between the hub and the adapters that speak to other systems.

An adapter *pulls* :class:`SourceRecord` objects from a source, resuming after a
:class:`StreamCursor`, and may *push* batches of :class:`ChangeEvent` to a target.
The hub keeps cursors, retries and quarantine; an adapter keeps no state of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class StreamCursor:
    """How far a stream has been read: the last modified value and key seen (keyset order)."""

    modified: str | None = None
    key: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The cursor as stored in the cursors table."""
        return {"modified": self.modified, "key": self.key}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> StreamCursor:
        """Read a stored cursor (an empty one for a stream never read)."""
        if not value:
            return cls()
        return cls(modified=value.get("modified"), key=value.get("key"))


@dataclass(slots=True)
class SourceRecord:
    """One record as a source holds it, before any mapping.

    ``payload`` is kept verbatim as the raw record; ``modified`` and ``source_id``
    order the stream, so ``cursor`` is the position just after this record.
    """

    stream: str
    source_id: str
    payload: dict[str, Any]
    modified: str | None = None

    @property
    def cursor(self) -> StreamCursor:
        """The cursor that resumes just after this record."""
        return StreamCursor(modified=self.modified, key=self.source_id)


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A change to a canonical entity, as the outbox hands it to a target adapter.

    ``ordering_key`` is what delivery keeps in order (the person, by default) and
    ``sequence`` the event's position in the outbox, rising within a key.
    """

    event_id: str
    entity_type: str
    entity_id: str
    person_id: str | None
    kind: str
    version: int
    payload: dict[str, Any]
    created_at: datetime
    source: str | None = None
    ordering_key: str | None = None
    sequence: int | None = None

    @property
    def idempotency_key(self) -> str:
        """Entity id and version: the same change always carries the same key."""
        return f"{self.entity_id}:{self.version}"


@dataclass(frozen=True, slots=True)
class PushResult:
    """What a target said about one event: accepted (with its receipt) or why not."""

    event_id: str
    accepted: bool
    receipt: str | None = None
    error: str | None = None
    permanent: bool = False


def not_sent(events: Sequence[ChangeEvent]) -> list[PushResult]:
    """The results of events a target did not send because the server turned a batch away part-way (busy): each
    not accepted and retryable, so delivery tries them again."""
    return [PushResult(e.event_id, False, error="not sent: the server was busy") for e in events]


@dataclass(slots=True)
class StreamSpec:
    """What one stream of a source produces: its name, entity type and mapping."""

    name: str
    entity_type: str
    depends_on: list[str] = field(default_factory=list)


@runtime_checkable
class Adapter(Protocol):
    """What the hub needs of any adapter; see ``adapters.base.BaseAdapter``."""

    name: str

    def streams(self) -> list[StreamSpec]:
        """The streams this source offers, in the order they must be read."""
        ...

    def pull(self, stream: str, cursor: StreamCursor, until: datetime) -> Iterator[SourceRecord]:
        """Yield records of ``stream`` after ``cursor`` and not after ``until``, in cursor order."""
        ...

    def map(self, record: SourceRecord) -> MappedRecord:
        """Turn one source record into a canonical document (raising QuarantineError if bad)."""
        ...

    def can_read_ahead(self) -> bool:
        """True when ``pull`` and ``map`` may run in a forked reader process while the store writes
        (``hub.sync``); ``adapters.base.BaseAdapter`` says False."""
        ...

    def after_fork(self) -> None:
        """Called first in that forked reader: drop what must not be shared with the parent (connections)."""
        ...

    def close(self) -> None:
        """Release the adapter's connections once a sync or a job is done with it."""
        ...


@runtime_checkable
class TargetAdapter(Protocol):
    """What delivery needs of a system it pushes to.

    Built as ``cls(name, TargetSettings)`` from ``[targets.NAME]`` in the
    subscriptions file. ``push`` answers one :class:`PushResult` per event; it
    raises :class:`~hub.errors.RetryableError` when the whole batch may succeed
    later (the target is down, busy, or answered 5xx/429) and
    :class:`~hub.errors.PermanentDeliveryError` when the whole batch is refused
    for good. A target must treat an event whose ``idempotency_key`` it has
    already accepted as accepted again, without applying it twice.
    """

    name: str

    def push(self, batch: list[ChangeEvent]) -> list[PushResult]:
        """Send a batch (in order) and say, per event, what the target did with it."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(slots=True)
class MappedRecord:
    """A source record mapped to canonical shape, references not yet resolved.

    ``document`` is the canonical entity as a dict (without ``id``/``person_id``);
    ``references`` maps a document field to the (stream, source id) it points at,
    which the pipeline turns into the hub's own id.
    """

    entity_type: str
    document: dict[str, Any]
    references: dict[str, tuple[str, str]] = field(default_factory=dict)
