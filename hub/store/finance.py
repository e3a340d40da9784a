"""The finance link's tables: commitment lines and their versions, actuals back, files picked up, variances.

A *commitment line* is one approved care service as the finance system sees it
(``commitment_id`` is the canonical Commitment's id). Every change to a line is a new row
in ``finance_versions``, never an edit: a version carries the whole line as it
now stands, the delta from the version before and the reason. ``finance_versions.id``
rises in commit order (its writer holds the outbox-order lock), so the finance
feed reads it behind a cursor and never skips a version.

Money is integer pence; units are integer hundredths. Both become Decimal or
2-place decimal strings at the edges (``finance_link.money``), never float.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.tables import Base, BigId, utcnow

Pence = BigInteger().with_variant(Integer(), "sqlite")


class FinanceVersion(Base):
    """One version of a commitment line: create, amend, close or reverse, with the delta and the reason."""

    __tablename__ = "finance_versions"
    __table_args__ = (
        UniqueConstraint("line_id", "version", name="uq_finance_versions_line_version"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    line_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    person_id: Mapped[str] = mapped_column(String(36))
    care_plan_id: Mapped[str | None] = mapped_column(String(36))
    service_type: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(8))
    cost_period: Mapped[str] = mapped_column(String(10))
    provider_code: Mapped[str | None] = mapped_column(String(16))
    supplier_number: Mapped[str | None] = mapped_column(String(16))
    supplier_site: Mapped[str | None] = mapped_column(String(8))
    cost_centre: Mapped[str] = mapped_column(String(16))
    subjective: Mapped[str] = mapped_column(String(16))
    vat_treatment: Mapped[str] = mapped_column(String(8))
    unit_cost_pence: Mapped[int] = mapped_column(Pence)
    units_x100: Mapped[int] = mapped_column(Integer)
    weekly_pence: Mapped[int] = mapped_column(Pence)
    vat_weekly_pence: Mapped[int] = mapped_column(Pence)
    contribution_pence: Mapped[int] = mapped_column(Pence)
    total_pence: Mapped[int] = mapped_column(Pence)
    total_basis: Mapped[str] = mapped_column(String(8))
    delta_weekly_pence: Mapped[int] = mapped_column(Pence)
    delta_total_pence: Mapped[int] = mapped_column(Pence)
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date | None] = mapped_column(Date)
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_on: Mapped[date | None] = mapped_column(Date)
    event_id: Mapped[str] = mapped_column(String(36))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The version as the feed, the CSV and the SOAP push carry it (JSON), made once when it is written:
    # a version never changes, so the feed hands out these bytes as they are.
    item: Mapped[str | None] = mapped_column(Text)


class FinanceLine(Base):
    """A commitment line as its latest version leaves it: what the finance page filters and totals."""

    __tablename__ = "finance_lines"
    __table_args__ = (
        Index("ix_finance_lines_person", "person_id"),
        Index("ix_finance_lines_plan", "care_plan_id"),
    )

    line_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    commitment_id: Mapped[str] = mapped_column(String(36), unique=True)
    person_id: Mapped[str] = mapped_column(String(36))
    care_plan_id: Mapped[str | None] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))  # open, closed, reversed
    service_type: Mapped[str] = mapped_column(String(32))
    provider_code: Mapped[str | None] = mapped_column(String(16))
    cost_centre: Mapped[str] = mapped_column(String(16))
    weekly_pence: Mapped[int] = mapped_column(Pence)
    total_pence: Mapped[int] = mapped_column(Pence)
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FinanceActual(Base):
    """A payment or invoice the finance system posted against a commitment line (its reference is unique)."""

    __tablename__ = "finance_actuals"
    __table_args__ = (Index("ix_finance_actuals_line", "line_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    line_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(8))  # invoice, payment
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    amount_pence: Mapped[int] = mapped_column(Pence)
    origin: Mapped[str] = mapped_column(String(160))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class FinanceActualFile(Base):
    """A CSV of actuals picked up from the drop folder: the same content twice is recognised by its hash."""

    __tablename__ = "finance_actual_files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    outcome: Mapped[str] = mapped_column(String(10))  # processed, failed
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class FinanceVariance(Base):
    """A line whose actual spend differs from plan by more than the threshold: a flag for the budget holder."""

    __tablename__ = "finance_variances"

    line_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36), index=True)
    planned_pence: Mapped[int] = mapped_column(Pence)
    actual_pence: Mapped[int] = mapped_column(Pence)
    percent: Mapped[str] = mapped_column(String(12))
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
