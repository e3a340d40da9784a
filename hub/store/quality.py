"""Data-quality issues: things a person must look at, raised by the hub itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.tables import Base, BigId, utcnow


class DataQualityIssue(Base):
    """One issue on one record, e.g. a person whose address's UPRN was retired with no successor."""

    __tablename__ = "data_quality_issues"
    __table_args__ = (Index("ix_data_quality_issues_status_kind", "status", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()
