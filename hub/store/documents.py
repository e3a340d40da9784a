"""The EDRMS's documents as the hub knows them, and the history of their links to people and cases.

``edrms_documents`` keeps one row per document of each repository: its metadata as last crawled, the
identifiers found in its properties, whether it is linked (and to whom) or an orphan (and why), and
its retention as last computed. ``edrms_links`` keeps every link ever made, by the pull or by a records
manager, with who made it, when and why, and who ended it, when and why: never deleted.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.store.tables import Base, BigId, utcnow


class EdrmsDocument(Base):
    """One document of an EDRMS repository: crawled metadata, identifiers found, link state, retention."""

    __tablename__ = "edrms_documents"
    __table_args__ = (
        UniqueConstraint("repository", "object_id", name="uq_edrms_documents_object"),
        Index("ix_edrms_documents_status", "status", "id"),
        Index("ix_edrms_documents_person", "person_id"),
        Index("ix_edrms_documents_retain", "retain_until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    document_type: Mapped[str | None] = mapped_column(String(64))
    record_class: Mapped[str | None] = mapped_column(String(64))
    mime_type: Mapped[str | None] = mapped_column(String(100))
    content_length: Mapped[int | None] = mapped_column(BigInteger)
    author: Mapped[str | None] = mapped_column(String(100))
    created: Mapped[datetime | None] = mapped_column()
    modified: Mapped[datetime | None] = mapped_column()
    change_token: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(Text)
    # Identifiers found in the document's properties (what the pull links by).
    person_ref: Mapped[str | None] = mapped_column(String(64))
    nhs_number: Mapped[str | None] = mapped_column(String(10))
    client_ref: Mapped[str | None] = mapped_column(String(64))
    case_ref: Mapped[str | None] = mapped_column(String(64))
    # Properties the hub wrote back, as last read from the repository.
    written: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="orphan")
    orphan_reason: Mapped[str | None] = mapped_column(String(40))
    person_id: Mapped[str | None] = mapped_column(String(36))
    episode_id: Mapped[str | None] = mapped_column(String(36))
    retain_until: Mapped[date | None] = mapped_column(Date)
    retention_rule: Mapped[str | None] = mapped_column(String(64))
    legal_holds: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def link_to(self, person_id: str, episode_id: str | None) -> None:
        """Now linked to this person (and case)."""
        self.person_id, self.episode_id, self.status, self.orphan_reason = person_id, episode_id, "linked", None
        self.updated_at = utcnow()

    def make_orphan(self, reason: str | None, *, status: str = "orphan") -> None:
        """Linked to no one (``status`` "deleted" when the EDRMS deleted it), with no retention of its own."""
        self.person_id, self.episode_id, self.status, self.orphan_reason = None, None, status, reason
        self.retain_until, self.retention_rule, self.legal_holds = None, None, []
        self.updated_at = utcnow()


class EdrmsLink(Base):
    """One link of a document to a person (and maybe a case): who made it and why, who ended it and why."""

    __tablename__ = "edrms_links"
    __table_args__ = (Index("ix_edrms_links_document", "document_id", "active"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("edrms_documents.id"))
    document: Mapped[EdrmsDocument] = relationship(lazy="raise")
    person_id: Mapped[str] = mapped_column(String(36), index=True)
    episode_id: Mapped[str | None] = mapped_column(String(36))
    method: Mapped[str] = mapped_column(String(16))  # "pull" or "manual"
    basis: Mapped[str] = mapped_column(String(40))  # what it was linked by: nhs_number, client_id, records_manager
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    ended_by: Mapped[str | None] = mapped_column(String(128))
    ended_at: Mapped[datetime | None] = mapped_column()
    end_reason: Mapped[str | None] = mapped_column(Text)
