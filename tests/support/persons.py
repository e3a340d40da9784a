"""Golden persons written straight through the writer, for tests of identity that need people in a store."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.orm import Session

from hub.model import Address, Identifier, Person, PersonName
from hub.store.writer import Provenance, write_canonical


def add_person(
    session: Session,
    given: str,
    family: str,
    born: date,
    *,
    postcode: str = "LS6 2AB",
    nhs: str | None = None,
    verified: bool = False,
    system: str = "legacy_escr",
) -> str:
    """A golden person through the writer: entity, index row, identifier, provenance."""
    person_id = str(uuid.uuid4())
    person = Person(
        id=person_id,
        names=[PersonName(given=[given], family=family)],
        birth_date=born,
        sex="female",
        nhs_number=nhs,
        nhs_number_status="01" if verified else None,
        identifiers=[Identifier(system=system, value=person_id[:8])],
        addresses=[Address(text="12 Rowan Road", town="Leeds", postcode=postcode)],
    )
    write_canonical(session, person, Provenance(system, "clients", person_id[:8]))
    return person_id
