"""Transitions' own tables: each move's history and its reconciliation (what was sent, what came back).

The Transition itself is a canonical entity (written by the golden-record writer); these tables
keep what a canonical document does not: every step with who took it and when, and one row per
item the adult referral carried with the receiving system's acknowledgement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.tables import Base, BigId, utcnow


class TransitionStep(Base):
    """One step of a transition: a stage reached, a decision recorded, a hold, a refusal."""

    __tablename__ = "transition_steps"
    __table_args__ = (Index("ix_transition_steps_transition", "transition_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transition_id: Mapped[str] = mapped_column(ForeignKey("entities.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    stage: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TransitionItem(Base):
    """One item the adult referral carried, and what the adults' system said about it."""

    __tablename__ = "transition_items"
    __table_args__ = (Index("ix_transition_items_transition", "transition_id", "position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transition_id: Mapped[str] = mapped_column(ForeignKey("entities.id"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    receipt: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
