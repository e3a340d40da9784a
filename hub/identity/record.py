"""What the matcher knows about one person record, whatever system it came from.

A :class:`MatchRecord` is built from a CSV row (the bulk commands), from a
canonical :class:`~hub.model.Person` (the pipeline and the store), and holds
the fields as the source wrote them; normalisation happens when records are
encoded for comparison (:mod:`hub.identity.table`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hub.identity.normalise import birth_parts
from hub.model import Person

CSV_COLUMNS = (
    "id",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "address_line",
    "locality",
    "postcode",
    "nhs_number",
)


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """One person record as the matcher sees it; every field may be missing."""

    id: str
    given_name: str | None = None
    family_name: str | None = None
    birth_date: date | str | None = None
    sex: str | None = None
    address_line: str | None = None
    locality: str | None = None
    postcode: str | None = None
    nhs_number: str | None = None
    nhs_verified: bool = False
    uprn: str | None = None
    identifiers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    deceased: bool = False
    death_date: date | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, str | None], row_number: int = 0) -> MatchRecord:
        """A record from a CSV row; absent or empty columns are missing values.

        Besides the documented columns, optional ``nhs_verified`` (true/1/yes),
        ``uprn`` and ``death_date`` are read when a file has them.
        """

        def value(name: str) -> str | None:
            text = row.get(name)
            text = text.strip() if isinstance(text, str) else None
            return text or None

        death = value("death_date")
        death_parts = birth_parts(death)
        return cls(
            id=value("id") or str(row_number),
            given_name=value("given_name"),
            family_name=value("family_name"),
            birth_date=value("birth_date"),
            sex=value("sex"),
            address_line=value("address_line"),
            locality=value("locality"),
            postcode=value("postcode"),
            nhs_number=value("nhs_number"),
            nhs_verified=(value("nhs_verified") or "").lower() in {"1", "true", "yes", "y", "01"},
            uprn=value("uprn"),
            deceased=death is not None,
            death_date=date(*death_parts) if all(death_parts) else None,
        )

    @classmethod
    def from_person(cls, person: Person, record_id: str | None = None) -> MatchRecord:
        """A record from a canonical Person: current name and address, NHS number and its status."""
        name = person.current_name
        address = person.addresses[0] if person.addresses else None
        line = None
        if address is not None:
            line = (
                address.text
                or " ".join(
                    str(p)
                    for p in (
                        address.sao_text,
                        address.pao_text,
                        address.pao_start_number,
                        address.street,
                    )
                    if p
                )
                or None
            )
        return cls(
            id=record_id or person.id or "",
            given_name=name.given[0] if name.given else None,
            family_name=name.family,
            birth_date=person.birth_date,
            sex=str(person.sex),
            address_line=line,
            locality=(address.locality or address.town) if address else None,
            postcode=address.postcode if address else None,
            nhs_number=person.nhs_number,
            nhs_verified=person.nhs_number_verified,
            uprn=address.uprn if address else None,
            identifiers=tuple((i.system, i.value) for i in person.identifiers),
            deceased=person.death_date is not None,
            death_date=person.death_date,
        )

    @classmethod
    def from_document(cls, document: Mapping[str, Any], record_id: str) -> MatchRecord:
        """A record from a golden Person kept as a JSON document (as :meth:`from_person`, without validating)."""
        name = (document.get("names") or [{}])[0]
        given = name.get("given") or []
        address = (document.get("addresses") or [None])[0]
        line = None
        if address is not None:
            line = address.get("text") or " ".join(
                str(address[k]) for k in ("sao_text", "pao_text", "pao_start_number", "street") if address.get(k)
            ) or None
        death = document.get("death_date")
        birth = document.get("birth_date")
        return cls(
            id=record_id,
            given_name=given[0] if given else None,
            family_name=name.get("family"),
            birth_date=date.fromisoformat(birth) if birth else None,
            sex=str(document.get("sex") or "unknown"),
            address_line=line,
            locality=(address.get("locality") or address.get("town")) if address else None,
            postcode=address.get("postcode") if address else None,
            nhs_number=document.get("nhs_number"),
            nhs_verified=bool(document.get("nhs_number")) and document.get("nhs_number_status") == "01",
            uprn=address.get("uprn") if address else None,
            identifiers=tuple((i["system"], i["value"]) for i in document.get("identifiers", [])),
            deceased=death is not None,
            death_date=date.fromisoformat(death) if death else None,
        )
