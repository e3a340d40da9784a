"""Which person and case a document is about, from the identifiers in its properties.

A document may carry the hub's person id, an NHS number, the legacy system's client id and a case id.
:class:`IdentifierIndex` looks a whole page of them up at once (a handful of indexed queries), follows
merges (a stale person id of someone merged away leads to the survivor) and :meth:`IdentifierIndex.resolve`
decides one document:

* every identifier that is known points at one person: **linked** to that person (and to the case when
  the case id is known and is that person's), the basis naming the identifiers that agreed;
* known identifiers point at different people: an **orphan**, ``CONFLICTING_IDENTIFIERS``;
* identifiers given but none known: an orphan, ``UNKNOWN_IDENTIFIERS``;
* no identifiers at all: an orphan, ``NO_IDENTIFIERS``.

An identifier no one holds beside ones that agree does not stop the link; it is noted in the basis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.store.tables import Entity, PersonIdentifier, PersonIndex, SourceLink

ORPHAN_REASONS = {
    "NO_IDENTIFIERS": "no person or case identifier in the document's properties",
    "UNKNOWN_IDENTIFIERS": "its identifiers match no one the hub knows",
    "CONFLICTING_IDENTIFIERS": "its identifiers point at different people",
    "UNLINKED": "a records manager removed its link",
}


@dataclass(frozen=True)
class FoundIds:
    """The identifiers found in one document's properties."""

    person_ref: str | None = None
    nhs_number: str | None = None
    client_ref: str | None = None
    case_ref: str | None = None

    @classmethod
    def from_properties(cls, props: Mapping[str, Any], names: Mapping[str, str]) -> FoundIds:
        """Read them through the configured property names (``[edrms] properties``)."""
        def text(key: str) -> str | None:
            value = props.get(names.get(key, ""))
            if isinstance(value, list):
                value = value[0] if value else None
            value = None if value is None else str(value).strip()
            return value or None

        nhs = text("nhs_number")
        nhs = "".join(ch for ch in nhs if ch.isdigit()) if nhs else None
        return cls(text("person_id"), nhs if nhs and len(nhs) == 10 else None, text("client_id"), text("case_id"))

    @property
    def empty(self) -> bool:
        """True when the document carries none."""
        return not (self.person_ref or self.nhs_number or self.client_ref or self.case_ref)


@dataclass(frozen=True)
class Resolution:
    """What the identifiers say: a person (and case) with the basis, or an orphan reason."""

    person_id: str | None
    episode_id: str | None
    basis: str
    reason: str | None = None

    @property
    def linked(self) -> bool:
        """True when a person was found."""
        return self.person_id is not None


class IdentifierIndex:
    """Batch lookups of a page of documents' identifiers against the hub's people and cases."""

    def __init__(self, session: Session, client_system: str) -> None:
        self.session = session
        self.client_system = client_system
        self.persons: dict[str, str] = {}
        self.nhs: dict[str, set[str]] = {}
        self.clients: dict[str, str] = {}
        self.cases: dict[str, tuple[str, str | None]] = {}

    def load(self, found: Iterable[FoundIds]) -> None:
        """Look every identifier of these documents up (people by id, NHS number, client id; cases)."""
        items = list(found)
        refs = {f.person_ref for f in items if f.person_ref}
        numbers = {f.nhs_number for f in items if f.nhs_number}
        clients = {f.client_ref for f in items if f.client_ref}
        cases = {f.case_ref for f in items if f.case_ref}
        s = self.session
        raw_persons: dict[str, str] = {}
        for chunk in _chunks(refs - self.persons.keys()):
            raw_persons.update({pid: pid for pid in s.scalars(
                select(Entity.id).where(Entity.id.in_(chunk), Entity.entity_type == "Person"))})
        for chunk in _chunks(numbers - self.nhs.keys()):
            for pid, number in s.execute(select(PersonIndex.person_id, PersonIndex.nhs_number).where(
                    PersonIndex.nhs_number.in_(chunk), PersonIndex.merged_into.is_(None))):
                if number:
                    self.nhs.setdefault(number, set()).add(pid)
        for chunk in _chunks(clients - self.clients.keys()):
            for value, pid in s.execute(select(PersonIdentifier.value, PersonIdentifier.person_id).where(
                    PersonIdentifier.system == self.client_system, PersonIdentifier.value.in_(chunk))):
                self.clients[value] = pid
        for chunk in _chunks(cases - self.cases.keys()):
            for eid, owner in s.execute(select(Entity.id, Entity.person_id).where(
                    Entity.id.in_(chunk), Entity.entity_type == "Episode")):
                self.cases[eid] = (eid, owner)
            by_source: dict[str, str] = {}  # a source's own episode id -> the hub's episode (first found)
            for source_id, eid in s.execute(select(SourceLink.source_id, SourceLink.entity_id).where(
                    SourceLink.source_id.in_(chunk), SourceLink.entity_type == "Episode")):
                if source_id not in self.cases:
                    by_source.setdefault(source_id, eid)
            owners: dict[str, str | None] = {}
            for eids in _chunks(set(by_source.values())):
                for eid, owner in s.execute(select(Entity.id, Entity.person_id).where(Entity.id.in_(eids))):
                    owners[eid] = owner
            for source_id, eid in by_source.items():
                self.cases[source_id] = (eid, owners.get(eid))
        survivors = self.survivors({*raw_persons, *self.clients.values(),
                                    *(p for _, p in self.cases.values() if p)})
        self.persons.update({ref: survivors.get(pid, pid) for ref, pid in raw_persons.items()})
        self.clients = {k: survivors.get(v, v) for k, v in self.clients.items()}
        self.cases = {k: (e, survivors.get(p, p) if p else p) for k, (e, p) in self.cases.items()}

    def survivors(self, person_ids: Iterable[str]) -> dict[str, str]:
        """For each person merged away, the person they now live on in (following chains of merges)."""
        direct: dict[str, str] = {}
        seen: set[str] = set()
        frontier = set(person_ids)
        while frontier:
            seen |= frontier
            for chunk in _chunks(frontier):
                direct.update({pid: str(into) for pid, into in self.session.execute(
                    select(PersonIndex.person_id, PersonIndex.merged_into).where(
                        PersonIndex.person_id.in_(chunk), PersonIndex.merged_into.is_not(None)))})
            frontier = set(direct.values()) - seen
        out: dict[str, str] = {}
        for pid, into in direct.items():
            hops = 0
            while into in direct and hops < len(direct):
                into, hops = direct[into], hops + 1
            out[pid] = into
        return out

    def resolve(self, found: FoundIds) -> Resolution:
        """The person and case this document is about, or why it is an orphan."""
        if found.empty:
            return Resolution(None, None, "", "NO_IDENTIFIERS")
        claims: list[tuple[str, str]] = []
        unknown: list[str] = []
        if found.person_ref:
            pid = self.persons.get(found.person_ref)
            claims.append(("person_id", pid)) if pid else unknown.append("person_id")
        if found.nhs_number:
            owners = self.nhs.get(found.nhs_number, set())
            if len(owners) == 1:
                claims.append(("nhs_number", next(iter(owners))))
            elif owners:
                return Resolution(None, None, "", "CONFLICTING_IDENTIFIERS")
            else:
                unknown.append("nhs_number")
        if found.client_ref:
            pid = self.clients.get(found.client_ref)
            claims.append(("client_id", pid)) if pid else unknown.append("client_id")
        episode_id = None
        if found.case_ref:
            case = self.cases.get(found.case_ref)
            if case is not None and case[1]:
                episode_id = case[0]
                claims.append(("case_id", case[1]))
            else:
                unknown.append("case_id")
        people = {pid for _, pid in claims}
        if not people:
            return Resolution(None, None, "", "UNKNOWN_IDENTIFIERS")
        if len(people) > 1:
            return Resolution(None, None, "", "CONFLICTING_IDENTIFIERS")
        basis = "+".join(name for name, _ in claims)
        if unknown:
            basis += " (unknown: " + ", ".join(unknown) + ")"
        return Resolution(people.pop(), episode_id, basis)


def _chunks(values: Iterable[str], size: int = 500) -> Iterable[list[str]]:
    items = sorted(values)
    for start in range(0, len(items), size):
        yield items[start:start + size]
