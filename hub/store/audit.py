"""The audit trail's tables: one append-only row per request, the people it touched, break-glass reviews.

``audit_events`` and ``audit_subjects`` are never updated or deleted (triggers
refuse it on both backends). A break glass also opens a row in
``break_glass_reviews``, the one table here whose state moves, as an auditor
works through the queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.tables import Base, BigId, utcnow


class AuditEvent(Base):
    """One read, search, write or denial: who, in which role and team, why, from where, what, and how it ended."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_user_recorded", "user_id", "recorded"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    recorded: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[str] = mapped_column(String(128))
    issuer: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str | None] = mapped_column(String(32))
    team: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(32))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    action: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    break_glass_reason: Mapped[str | None] = mapped_column(Text)
    resources: Mapped[list[Any]] = mapped_column(JSON, default=list)


class AuditSubject(Base):
    """A person an audit event touched (so auditors can ask "who looked at this person?")."""

    __tablename__ = "audit_subjects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audit_events.id"), index=True)
    person_id: Mapped[str] = mapped_column(String(36), index=True)


class BreakGlassReview(Base):
    """A break glass waiting for (or given) an auditor's review."""

    __tablename__ = "break_glass_reviews"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audit_events.id"), unique=True)
    user_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(128))
    reviewed_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
