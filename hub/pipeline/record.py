"""The record that flows through the pipeline's stages, a batch's counts, and the reader's prepared form.

Every stage (:mod:`~hub.pipeline.map`, :mod:`~hub.pipeline.validate`, :mod:`~hub.pipeline.enrich`,
:mod:`~hub.pipeline.resolve`, :mod:`~hub.pipeline.write`, :mod:`~hub.pipeline.emit`) takes a
batch's :class:`Record` list and fills in its part; none calls another stage or the pipeline.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hub.contract import MappedRecord, SourceRecord, StreamCursor
from hub.errors import QuarantineError
from hub.model import Canonical
from hub.store.canonical import canonical_json, content_hash

Mapper = Callable[[SourceRecord], MappedRecord]


@dataclass
class BatchResult:
    """What one batch did, by outcome."""

    received: int = 0
    accepted: int = 0
    quarantined: int = 0
    unchanged: int = 0
    created: int = 0
    updated: int = 0
    events: int = 0
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    streams: dict[str, BatchResult] = field(default_factory=dict)  # a sync's counts per stream

    def add(self, other: BatchResult) -> None:
        """Fold another batch's counts into this one."""
        for name in ("received", "accepted", "quarantined", "unchanged", "created", "updated", "events"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.reasons.items():
            self.reasons[reason] += n
        for stream, counts in other.streams.items():
            self.streams.setdefault(stream, BatchResult()).add(counts)

    def add_stream(self, stream: str, other: BatchResult) -> None:
        """Fold a batch of ``stream`` into this one, keeping the stream's own counts too."""
        self.add(other)
        self.streams.setdefault(stream, BatchResult()).add(other)

    def refused_streams(self) -> dict[str, BatchResult]:
        """The streams that read records and accepted none of them, every new one quarantined."""
        return {name: r for name, r in self.streams.items() if r.received and not r.accepted and r.quarantined}

    def as_dict(self) -> dict[str, Any]:
        """Counts as plain JSON."""
        return {
            "received": self.received, "accepted": self.accepted, "quarantined": self.quarantined,
            "unchanged": self.unchanged, "created": self.created, "updated": self.updated,
            "events": self.events, "reasons": dict(self.reasons),
        }


# A quarantine reason as it crosses from a reader process: (reason, message, field).
Problem = tuple[str, str, str | None]


class PreparedRecord(NamedTuple):
    """A source record already kept as canonical JSON, hashed and mapped, ready for :meth:`Pipeline.ingest`.

    What :func:`prepare` makes of a :class:`SourceRecord` without touching the store, so a
    reader process can do it while the store writes the batch before (``hub.sync``). The
    pipeline treats it exactly as the record it came from: ``payload_json`` is the raw record
    kept; ``entity_type``, ``document`` and ``references`` are what the mapper made of it, or
    ``error`` the mapper's quarantine reason. Plain values only: a batch crosses a pipe as
    plain tuples (:func:`prepared_rows`), and unpickling is paid by the store's process.

    """

    stream: str
    source_id: str
    modified: str | None
    payload_json: bytes
    hash: str
    entity_type: str | None = None
    document: dict[str, Any] | None = None
    references: dict[str, tuple[str, str]] | None = None
    error: Problem | None = None

    @property
    def cursor(self) -> StreamCursor:
        """The cursor that resumes just after this record."""
        return StreamCursor(modified=self.modified, key=self.source_id)


def prepared_rows(rows: Iterable[tuple[Any, ...]]) -> list[PreparedRecord]:
    """Prepared records from the plain tuples of their values (as they cross a pipe: a tuple
    pickles and unpickles in C, a named tuple through Python calls)."""
    make = tuple.__new__
    return [make(PreparedRecord, row) for row in rows]


def records_of(records: Sequence[SourceRecord | PreparedRecord]) -> list[Record]:
    """The batch as records, the last of each (stream, source id) only."""
    latest: dict[tuple[str, str], Record] = {}
    for record in records:
        if isinstance(record, PreparedRecord):
            item = Record(record, record.payload_json, record.hash)
        else:
            payload = canonical_json(record.payload)
            item = Record(record, payload, content_hash(payload))
        latest[(record.stream, record.source_id)] = item
    return list(latest.values())


class Link(NamedTuple):
    """The source link a record already has: what the pipeline reads of it."""

    id: int
    entity_id: str
    content_hash: str
    version: int


@dataclass(eq=False, slots=True)
class Record:
    """One record on its way through a batch: the one type every stage reads and fills in.

    ``document`` is the mapped document (its references resolved to the hub's ids), then, once
    validated (``model``), the canonical one, and ``document_json`` its canonical JSON.
    """

    record: SourceRecord | PreparedRecord
    payload: bytes
    hash: str
    raw_id: int | None = None
    link: Link | None = None
    entity_type: str = ""
    document: dict[str, Any] | None = None
    references: dict[str, tuple[str, str]] | None = None
    model: Canonical | None = None
    entity_id: str | None = None
    person_id: str | None = None
    document_json: bytes = b""
    error: QuarantineError | None = None
    held: bool = False  # a raw record of its key is quarantined: it may have an open quarantine entry
    fresh: bool = False  # its entity is new: id derived from its own key, which has no link yet

    def canonical(self) -> dict[str, Any]:
        """The canonical document of a validated record."""
        assert self.document is not None
        return self.document
