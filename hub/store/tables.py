"""The hub's tables (SQLAlchemy 2 typed ORM).

Raw records, audit and the outbox are append-only in their content; only their
processing state moves. Canonical entities are kept as validated JSON documents
with typed index tables beside them for the queries the hub makes (person
search, identifiers). Every time is UTC and timezone-aware.
"""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@lru_cache(maxsize=4096)
def _iso_from_sqlite(stored: str) -> str:
    return datetime.fromisoformat(stored).replace(tzinfo=UTC).isoformat()


class IsoTimestamp(TypeDecorator[str]):
    """A UTC timestamp column read straight as ISO 8601 text (``2024-01-01T00:00:00+00:00``), for answers that
    only print it: ``select(type_coerce(Entity.updated_at, IsoTimestamp))``.

    SQLite hands the stored text over as it is and the conversion is cached
    (rows written in one batch share their time), so the hot reads skip
    building a datetime per column and formatting it again.
    """

    impl = String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).isoformat()
        return _iso_from_sqlite(str(value))


# Big integer ids on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention Alembic relies on."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}


class RawRecord(Base):
    """A record exactly as a source sent it; never changed, never deleted."""

    __tablename__ = "raw_records"
    __table_args__ = (
        UniqueConstraint("source", "stream", "source_id", "content_hash", name="uq_raw_records_content"),
        Index("ix_raw_records_source_status", "source", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    stream: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_modified: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="accepted")


class Quarantine(Base):
    """A raw record that could not be accepted, with a stable reason and a readable message."""

    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_key", "source", "stream", "source_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    raw_record_id: Mapped[int] = mapped_column(ForeignKey("raw_records.id"), unique=True)
    source: Mapped[str] = mapped_column(String(64))
    stream: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(64), index=True)
    message: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Entity(Base):
    """A canonical entity (Person, Episode, CarePlan...) as a validated JSON document."""

    __tablename__ = "entities"
    __table_args__ = (Index("ix_entities_person", "person_id", "entity_type"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[str | None] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer, default=1)
    content_hash: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PersonIndex(Base):
    """Typed search columns of a golden Person, kept in step with its document.

    The phonetic codes and birth year are identity resolution's blocking keys
    (``hub.identity.resolver.document_match_keys`` computes them from the golden document).
    """

    __tablename__ = "person_index"
    __table_args__ = (
        Index("ix_person_index_family_phonetic_year", "family_phonetic", "birth_year"),
        Index("ix_person_index_given_phonetic_year", "given_phonetic", "birth_year"),
        Index("ix_person_index_postcode_given", "postcode", "given_name"),
    )

    person_id: Mapped[str] = mapped_column(ForeignKey("entities.id"), primary_key=True)
    nhs_number: Mapped[str | None] = mapped_column(String(10), index=True)
    nhs_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    family_name: Mapped[str | None] = mapped_column(String(100), index=True)
    given_name: Mapped[str | None] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column(Date, index=True)
    sex: Mapped[str | None] = mapped_column(String(8))
    postcode: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="active")
    merged_into: Mapped[str | None] = mapped_column(String(36))
    family_phonetic: Mapped[str | None] = mapped_column(String(8))
    given_phonetic: Mapped[str | None] = mapped_column(String(8))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    # The matcher's normalised fields (hub.identity.table.normalised_fields) as JSON; NULL: read the document.
    match_fields: Mapped[str | None] = mapped_column(Text)


class PersonIdentifier(Base):
    """A local id of a golden person in one source system."""

    __tablename__ = "person_identifiers"
    __table_args__ = (UniqueConstraint("system", "value", name="uq_person_identifiers_system_value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("entities.id"), index=True)
    system: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(128), index=True)


class SourceLink(Base):
    """Provenance: which source record said what about which canonical entity, and when."""

    __tablename__ = "source_links"
    __table_args__ = (
        UniqueConstraint("source", "stream", "source_id", name="uq_source_links_key"),
        Index("ix_source_links_entity", "entity_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    stream: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(128))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(36))
    content_hash: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
    raw_record_id: Mapped[int] = mapped_column(BigId)
    version: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class Cursor(Base):
    """How far a source's stream has been read; moves only in the transaction of its data."""

    __tablename__ = "cursors"
    __table_args__ = (UniqueConstraint("source", "stream", name="uq_cursors_source_stream"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    stream: Mapped[str] = mapped_column(String(64))
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# Lanes of the outbox: every event travels in the lane of its ordering key (the person, by default), and
# delivery reads each lane in order with one cursor per (target, lane). Part of the schema, not a setting:
# a person's events must stay in one lane, so changing it means draining the outbox first (docs/delivery.md).
OUTBOX_LANES = 16


def lane_of(ordering_key: str) -> int:
    """The outbox lane of an ordering key: stable across processes and machines (CRC-32, not hash())."""
    return zlib.crc32(ordering_key.encode()) % OUTBOX_LANES


def _lane_default(context: Any) -> int:
    return lane_of(context.get_current_parameters()["ordering_key"])


class OutboxEvent(Base):
    """A change event, written in the same transaction as the change it announces.

    Written only by :func:`hub.store.writer.append_events`, which takes the outbox-order lock and
    sets ``lane`` from the ordering key (:func:`lane_of`). ``status`` is the settlement of
    events routed before lanes existed (migration 0009_delivery_lanes); later events keep
    ``pending`` there, and their delivery state is read from the lane cursors (docs/delivery.md).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_id", "status", "id"), Index("ix_outbox_lane_id", "lane", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(36))
    person_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    ordering_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    lane: Mapped[int] = mapped_column(Integer, default=_lane_default)


class SyncRun(Base):
    """One run of `carehub sync` for one source: when, how it ended, what it counted."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
