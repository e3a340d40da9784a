"""The foundation's identity rule: a verified NHS number decides, nothing else does.

A record already linked keeps its person (the source's own id decides); a new
record with a verified NHS number joins the active person holding that number;
anything else becomes a new person. Scored matching replaces this behind the
same :class:`PersonResolver` interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.model import Person
from hub.store.tables import PersonIndex


@dataclass(frozen=True, slots=True)
class PersonCandidate:
    """A person record from a source that has no golden person yet."""

    source: str
    stream: str
    source_id: str
    person: Person


@dataclass(frozen=True, slots=True)
class Resolution:
    """Which golden person a candidate is (None: a new person), and why."""

    person_id: str | None
    rule: str
    score: float | None = None


class PersonResolver(Protocol):
    """Decides, for new person records, which golden person each one is."""

    def resolve_batch(self, session: Session, candidates: Sequence[PersonCandidate]) -> list[Resolution]:
        """One resolution per candidate, in order; candidates in one batch may resolve to each other."""
        ...


class ExactResolver:
    """Links on a verified NHS number only."""

    def resolve_batch(self, session: Session, candidates: Sequence[PersonCandidate]) -> list[Resolution]:
        """Join verified NHS numbers to the active person that holds them, in store or in batch."""
        numbers = {c.person.nhs_number for c in candidates if c.person.nhs_number_verified}
        known: dict[str, str] = {}
        if numbers:
            rows = session.execute(
                select(PersonIndex.nhs_number, PersonIndex.person_id).where(
                    PersonIndex.nhs_number.in_(numbers),
                    PersonIndex.nhs_verified.is_(True),
                    PersonIndex.status == "active",
                )
            )
            known = {n: pid for n, pid in rows if n is not None}
        out: list[Resolution] = []
        for c in candidates:
            number = c.person.nhs_number if c.person.nhs_number_verified else None
            if number and number in known:
                out.append(Resolution(known[number], "verified_nhs_number"))
            else:
                out.append(Resolution(None, "new_person"))
        return out
