"""The land and property gazetteer in BS7666 terms: streets, properties and their addresses.

These tables hold what the council's gazetteer says, keyed the way BS7666 keys
it: a street by its USRN, a property (BLPU) by its UPRN, an address of a
property (LPI) by its LPI key. They know no feed format; whatever reads a feed
(DTF 7.3 today) writes rows here, and ``gazetteer_loads`` remembers every file
offered, so the same file twice changes nothing.

UPRN and USRN are stored as integers (compact, fast to index) and rendered as
strings at the edges, where the canonical model and the API want them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Float, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.store.tables import Base, BigId, utcnow

UprnInt = BigInteger().with_variant(Integer(), "sqlite")


class Street(Base):
    """A street (BS7666 street record): its USRN, type, state and extent."""

    __tablename__ = "streets"

    usrn: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    record_type: Mapped[int | None] = mapped_column(Integer)
    swa_org_ref_naming: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[int | None] = mapped_column(Integer)
    state_date: Mapped[date | None] = mapped_column(Date)
    street_surface: Mapped[int | None] = mapped_column(Integer)
    street_classification: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int | None] = mapped_column(Integer)
    record_entry_date: Mapped[date | None] = mapped_column(Date)
    last_update_date: Mapped[date | None] = mapped_column(Date)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    start_x: Mapped[float | None] = mapped_column(Float)
    start_y: Mapped[float | None] = mapped_column(Float)
    end_x: Mapped[float | None] = mapped_column(Float)
    end_y: Mapped[float | None] = mapped_column(Float)
    tolerance: Mapped[int | None] = mapped_column(Integer)


class StreetDescriptor(Base):
    """A street's name, locality, town and administrative area in one language."""

    __tablename__ = "street_descriptors"

    usrn: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    language: Mapped[str] = mapped_column(String(3), primary_key=True)
    descriptor: Mapped[str] = mapped_column(String(100))
    locality: Mapped[str | None] = mapped_column(String(35))
    town: Mapped[str | None] = mapped_column(String(30))
    administrative_area: Mapped[str | None] = mapped_column(String(30))


class Property(Base):
    """A BLPU: one property or piece of land, identified by its UPRN."""

    __tablename__ = "properties"
    __table_args__ = (Index("ix_properties_parent_uprn", "parent_uprn"),)

    uprn: Mapped[int] = mapped_column(UprnInt, primary_key=True, autoincrement=False)
    logical_status: Mapped[int] = mapped_column(Integer)
    blpu_state: Mapped[int | None] = mapped_column(Integer)
    blpu_state_date: Mapped[date | None] = mapped_column(Date)
    blpu_class: Mapped[str | None] = mapped_column(String(6))
    parent_uprn: Mapped[int | None] = mapped_column(BigInteger)
    x_coordinate: Mapped[float | None] = mapped_column(Float)
    y_coordinate: Mapped[float | None] = mapped_column(Float)
    rpc: Mapped[int | None] = mapped_column(Integer)
    local_custodian_code: Mapped[int | None] = mapped_column(Integer)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    last_update_date: Mapped[date | None] = mapped_column(Date)
    entry_date: Mapped[date | None] = mapped_column(Date)
    organisation: Mapped[str | None] = mapped_column(String(100))
    ward_code: Mapped[str | None] = mapped_column(String(10))
    parish_code: Mapped[str | None] = mapped_column(String(10))
    custodian_one: Mapped[int | None] = mapped_column(Integer)
    custodian_two: Mapped[int | None] = mapped_column(Integer)
    can_key: Mapped[str | None] = mapped_column(String(14))


class PropertyAddress(Base):
    """An LPI: one address of a property (approved, alternative, provisional or historical)."""

    __tablename__ = "property_addresses"
    __table_args__ = (
        Index("ix_property_addresses_uprn", "uprn"),
        Index("ix_property_addresses_usrn", "usrn"),
        Index("ix_property_addresses_postcode", "postcode"),
    )

    lpi_key: Mapped[str] = mapped_column(String(14), primary_key=True)
    uprn: Mapped[int] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(3))
    logical_status: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    entry_date: Mapped[date | None] = mapped_column(Date)
    last_update_date: Mapped[date | None] = mapped_column(Date)
    sao_start_number: Mapped[int | None] = mapped_column(Integer)
    sao_start_suffix: Mapped[str | None] = mapped_column(String(2))
    sao_end_number: Mapped[int | None] = mapped_column(Integer)
    sao_end_suffix: Mapped[str | None] = mapped_column(String(2))
    sao_text: Mapped[str | None] = mapped_column(String(90))
    pao_start_number: Mapped[int | None] = mapped_column(Integer)
    pao_start_suffix: Mapped[str | None] = mapped_column(String(2))
    pao_end_number: Mapped[int | None] = mapped_column(Integer)
    pao_end_suffix: Mapped[str | None] = mapped_column(String(2))
    pao_text: Mapped[str | None] = mapped_column(String(90))
    usrn: Mapped[int | None] = mapped_column(BigInteger)
    level: Mapped[str | None] = mapped_column(String(30))
    postal_address: Mapped[str | None] = mapped_column(String(1))
    postcode: Mapped[str | None] = mapped_column(String(8))
    post_town: Mapped[str | None] = mapped_column(String(30))
    official_flag: Mapped[str | None] = mapped_column(String(1))
    custodian_one: Mapped[int | None] = mapped_column(Integer)
    custodian_two: Mapped[int | None] = mapped_column(Integer)
    can_key: Mapped[str | None] = mapped_column(String(14))


class Organisation(Base):
    """The name of an organisation occupying a property (a shop, a surgery, a school)."""

    __tablename__ = "organisations"
    __table_args__ = (Index("ix_organisations_uprn", "uprn"),)

    org_key: Mapped[str] = mapped_column(String(14), primary_key=True)
    uprn: Mapped[int] = mapped_column(BigInteger)
    organisation: Mapped[str] = mapped_column(String(100))
    legal_name: Mapped[str | None] = mapped_column(String(60))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    last_update_date: Mapped[date | None] = mapped_column(Date)
    entry_date: Mapped[date | None] = mapped_column(Date)


class Classification(Base):
    """A classification of a property's use under a named scheme."""

    __tablename__ = "classifications"
    __table_args__ = (Index("ix_classifications_uprn", "uprn"),)

    class_key: Mapped[str] = mapped_column(String(14), primary_key=True)
    uprn: Mapped[int] = mapped_column(BigInteger)
    classification_code: Mapped[str] = mapped_column(String(6))
    class_scheme: Mapped[str | None] = mapped_column(String(60))
    scheme_version: Mapped[float | None] = mapped_column(Float)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    last_update_date: Mapped[date | None] = mapped_column(Date)
    entry_date: Mapped[date | None] = mapped_column(Date)


class Successor(Base):
    """A property that took over from another (a house split into flats, a rebuilt block)."""

    __tablename__ = "successors"
    __table_args__ = (Index("ix_successors_uprn", "uprn"),)

    succ_key: Mapped[str] = mapped_column(String(14), primary_key=True)
    uprn: Mapped[int] = mapped_column(BigInteger)
    successor: Mapped[int] = mapped_column(BigInteger)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    last_update_date: Mapped[date | None] = mapped_column(Date)
    entry_date: Mapped[date | None] = mapped_column(Date)


class CrossReference(Base):
    """A property's reference in another council system (council tax, electoral roll...)."""

    __tablename__ = "cross_references"
    __table_args__ = (Index("ix_cross_references_uprn", "uprn"),)

    xref_key: Mapped[str] = mapped_column(String(14), primary_key=True)
    uprn: Mapped[int] = mapped_column(BigInteger)
    cross_reference: Mapped[str] = mapped_column(String(50))
    version: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(String(6))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    last_update_date: Mapped[date | None] = mapped_column(Date)
    entry_date: Mapped[date | None] = mapped_column(Date)


class GazetteerLoad(Base):
    """One gazetteer file offered to the hub: what it was, what it did, how it ended.

    ``outcome`` is ``applied`` or ``rejected``; a file whose sha256 was already
    applied is not applied again.
    """

    __tablename__ = "gazetteer_loads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_type: Mapped[str | None] = mapped_column(String(8))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))
    report: Mapped[str] = mapped_column(Text, default="")


GAZETTEER_TABLES = (
    Street,
    StreetDescriptor,
    Property,
    PropertyAddress,
    Organisation,
    Classification,
    Successor,
    CrossReference,
)


def applied_load(session: Session, sha256: str) -> GazetteerLoad | None:
    """The load that already applied a file with this content, if any."""
    return session.scalars(
        select(GazetteerLoad)
        .where(GazetteerLoad.sha256 == sha256, GazetteerLoad.outcome == "applied")
        .order_by(GazetteerLoad.id)
        .limit(1)
    ).first()


def latest_applied_load_id(session: Session) -> int:
    """The id of the most recent applied load (0 when none): a version stamp for caches."""
    found = session.scalars(
        select(GazetteerLoad.id)
        .where(GazetteerLoad.outcome == "applied")
        .order_by(GazetteerLoad.id.desc())
        .limit(1)
    ).first()
    return int(found or 0)


def property_addresses(session: Session, uprn: int) -> list[PropertyAddress]:
    """Every LPI of a property, approved first."""
    return list(
        session.scalars(
            select(PropertyAddress)
            .where(PropertyAddress.uprn == uprn)
            .order_by(PropertyAddress.logical_status, PropertyAddress.lpi_key)
        )
    )


def street_descriptors(session: Session, usrns: set[int]) -> list[StreetDescriptor]:
    """The descriptors of the given streets."""
    if not usrns:
        return []
    return list(
        session.scalars(select(StreetDescriptor).where(StreetDescriptor.usrn.in_(sorted(usrns))))
    )


def successors_of(session: Session, uprn: int) -> list[Successor]:
    """The successor records that name ``uprn`` as the property replaced."""
    return list(session.scalars(select(Successor).where(Successor.uprn == uprn)))


def organisations_at(session: Session, uprn: int) -> list[Organisation]:
    """The organisations recorded at a property."""
    return list(session.scalars(select(Organisation).where(Organisation.uprn == uprn)))
