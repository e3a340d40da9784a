"""Which golden person is this record? The pipeline's entry to identity resolution.

:class:`IdentityResolver` finds candidate persons in the store through
``person_index`` and ``person_identifiers`` (the same blocking keys as the bulk
engine, as indexed SQL lookups), reads their documents, scores the record
against each with the shared :class:`~hub.identity.engine.Matcher`, skips pairs
a person has already ruled apart, and answers with a :class:`Resolution`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import jellyfish
import numpy as np
from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import Session

from hub.identity import comparisons as cmp
from hub.identity import normalise
from hub.identity.config import IdentityConfig, load_identity_config
from hub.identity.engine import GUARDS, Evidence, GuardEvidence, Matcher, Outcome
from hub.identity.model import MatchModel
from hub.identity.record import MatchRecord
from hub.model import Person
from hub.store.identity import NO_LINK, ordered_pair, remembered_decisions
from hub.store.tables import Entity, PersonIdentifier, PersonIndex

ACTIVE = "active"


def match_keys(person: Person) -> dict[str, Any]:
    """The blocking columns of ``person_index`` for a person (the pipeline stores them).

    ``family_phonetic`` and ``given_phonetic`` are Soundex codes, ``birth_year`` the year.
    """
    name = person.current_name
    return _keys(name.family, name.given[0] if name.given else None,
                 person.birth_date.year if person.birth_date else None)


def document_match_keys(document: dict[str, Any]) -> dict[str, Any]:
    """``match_keys`` of a golden Person kept as a JSON document (the pipeline's form)."""
    name = (document.get("names") or [{}])[0]
    birth = document.get("birth_date")
    return _keys(name.get("family"), (name.get("given") or [None])[0], int(birth[:4]) if birth else None)


def _keys(family_name: str | None, given_name: str | None, birth_year: int | None) -> dict[str, Any]:
    family = normalise.family_name(family_name)
    given = normalise.given_name(given_name)
    return {
        "family_phonetic": jellyfish.soundex(family) if family else None,
        "given_phonetic": jellyfish.soundex(given) if given else None,
        "birth_year": birth_year,
    }


@dataclass(frozen=True, slots=True)
class Candidate:
    """One existing person the record was compared with, and how it came out."""

    person_id: str
    score: float
    outcome: Outcome
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class Resolution:
    """The answer for one record: link to ``person_id``, ask a reviewer about it, or a new person.

    ``evidence`` explains the outcome against the best candidate (None when there was
    no candidate at all); ``candidates`` lists every person compared, best first.
    """

    outcome: Outcome
    person_id: str | None
    score: float
    evidence: Evidence | None
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)


class IdentityResolver:
    """Resolves incoming person records against the golden persons in the store."""

    def __init__(self, config: IdentityConfig | None = None) -> None:
        self.config = config or load_identity_config()

    def resolve(self, candidate: MatchRecord, store_session: Session) -> Resolution:
        """Resolve one record (see :meth:`resolve_many`)."""
        return self.resolve_many([candidate], store_session)[0]

    def resolve_many(
        self, candidates: Sequence[MatchRecord], store_session: Session
    ) -> list[Resolution]:
        """Resolve a batch of records with one set of queries and one vectorised scoring.

        A record's ``id`` may be a golden person's id (re-resolving a known person):
        that person is not its own candidate, and pairs already ruled apart by a
        reviewer (or an unmerge) are skipped.
        """
        if not candidates:
            return []
        session = store_session
        found = self._candidate_ids(session, candidates)
        persons = self._load(session, sorted({pid for ids in found for pid in ids}))
        person_ids = sorted(persons)
        ruled_apart = {
            pair
            for pair, decision in remembered_decisions(session, [c.id for c in candidates]).items()
            if decision == NO_LINK
        }
        active = session.scalar(
            select(func.count()).select_from(PersonIndex).where(PersonIndex.status == ACTIVE)
        )
        prior = self.config.estimation.expected_known_share / max(int(active or 0), 1)
        matcher = Matcher(
            self.config, model=MatchModel.from_config(self.config, prior=min(prior, 0.5))
        )
        left = matcher.encoder.encode(candidates)
        right = matcher.encoder.encode(persons[pid] for pid in person_ids)
        column = {pid: k for k, pid in enumerate(person_ids)}
        li: list[int] = []
        ri: list[int] = []
        for row, (record, ids) in enumerate(zip(candidates, found, strict=True)):
            for pid in ids:
                if (
                    pid in column
                    and pid != record.id
                    and ordered_pair(record.id, pid) not in ruled_apart
                ):
                    li.append(row)
                    ri.append(column[pid])
        scored = matcher.score(
            left, right, np.array(li, dtype=np.int64), np.array(ri, dtype=np.int64)
        )
        per_record: list[list[Candidate]] = [[] for _ in candidates]
        for k, (row, col) in enumerate(zip(li, ri, strict=True)):
            per_record[row].append(
                Candidate(
                    person_ids[col],
                    float(scored.probability[k]),
                    scored.outcome(k),
                    scored.evidence(k),
                )
            )
        return [self._answer(sorted(c, key=lambda x: -x.score)) for c in per_record]

    @staticmethod
    def _answer(ranked: list[Candidate]) -> Resolution:
        if not ranked:
            return Resolution(Outcome.NO_LINK, None, 0.0, None)
        best = ranked[0]
        links = [c for c in ranked if c.outcome == Outcome.LINK]
        if len(links) > 1:
            # Two golden persons both fit: never pick one silently.
            evidence = Evidence(
                best.evidence.score,
                best.evidence.match_weight,
                best.evidence.prior_weight,
                Outcome.REVIEW,
                best.evidence.fields,
                (*best.evidence.guards, GuardEvidence(*GUARDS[cmp.AMBIGUOUS])),
            )
            return Resolution(Outcome.REVIEW, best.person_id, best.score, evidence, tuple(ranked))
        return Resolution(
            best.outcome,
            best.person_id if best.outcome != Outcome.NO_LINK else None,
            best.score,
            best.evidence,
            tuple(ranked),
        )

    @staticmethod
    def _candidate_ids(session: Session, records: Sequence[MatchRecord]) -> list[set[str]]:
        """Active persons sharing at least one blocking key with each record."""
        keys: list[dict[str, Any]] = []
        for record in records:
            family = normalise.family_name(record.family_name)
            given = normalise.given_name(record.given_name)
            year, month, day = normalise.birth_parts(record.birth_date)
            postcode = normalise.postcode_parts(record.postcode)
            keys.append(
                {
                    "nhs": normalise.nhs_number(record.nhs_number),
                    "birth": f"{year:04d}-{month:02d}-{day:02d}" if month else None,
                    "family_year": (jellyfish.soundex(family), year) if family and year else None,
                    "given_year": (jellyfish.soundex(given), year) if given and year else None,
                    "postcode": postcode[0] if postcode else None,
                    "initial": given[0] if given else None,
                    "identifiers": list(record.identifiers),
                }
            )
        idx = PersonIndex
        conditions = []
        nhs = {k["nhs"] for k in keys if k["nhs"]}
        births = {k["birth"] for k in keys if k["birth"]}
        family_years = {k["family_year"] for k in keys if k["family_year"]}
        given_years = {k["given_year"] for k in keys if k["given_year"]}
        postcodes = {k["postcode"] for k in keys if k["postcode"]}
        if nhs:
            conditions.append(idx.nhs_number.in_(nhs))
        if births:
            conditions.append(idx.birth_date.in_([date.fromisoformat(b) for b in births]))
        if family_years:
            conditions.append(tuple_(idx.family_phonetic, idx.birth_year).in_(family_years))
        if given_years:
            conditions.append(tuple_(idx.given_phonetic, idx.birth_year).in_(given_years))
        if postcodes:
            conditions.append(idx.postcode.in_(postcodes))
        rows: Sequence[Any] = []
        if conditions:
            rows = session.execute(
                select(
                    idx.person_id,
                    idx.nhs_number,
                    idx.birth_date,
                    idx.family_phonetic,
                    idx.given_phonetic,
                    idx.birth_year,
                    idx.postcode,
                    idx.given_name,
                ).where(idx.status == ACTIVE, or_(*conditions))
            ).all()
        pairs = {(s, v) for k in keys for s, v in k["identifiers"]}
        by_identifier: dict[tuple[str, str], set[str]] = {}
        if pairs:
            for pid, system, value in session.execute(
                select(PersonIdentifier.person_id, PersonIdentifier.system, PersonIdentifier.value)
                .join(idx, idx.person_id == PersonIdentifier.person_id)
                .where(
                    idx.status == ACTIVE,
                    tuple_(PersonIdentifier.system, PersonIdentifier.value).in_(pairs),
                )
            ):
                by_identifier.setdefault((system, value), set()).add(pid)
        out: list[set[str]] = []
        for k in keys:
            ids: set[str] = set()
            for pid, nhs_number, birth, fam, giv, year, postcode, given_name in rows:
                if (
                    (k["nhs"] and nhs_number == k["nhs"])
                    or (k["birth"] and birth is not None and birth.isoformat() == k["birth"])
                    or (k["family_year"] and (fam, year) == k["family_year"])
                    or (k["given_year"] and (giv, year) == k["given_year"])
                    or (
                        k["postcode"]
                        and postcode == k["postcode"]
                        and (normalise.given_name(given_name) or " ")[0] == k["initial"]
                    )
                ):
                    ids.add(pid)
            for pair in k["identifiers"]:
                ids |= by_identifier.get(pair, set())
            out.append(ids)
        return out

    @staticmethod
    def _load(session: Session, person_ids: list[str]) -> dict[str, MatchRecord]:
        """Candidate persons' documents as match records."""
        records: dict[str, MatchRecord] = {}
        if not person_ids:
            return records
        for entity_id, document in session.execute(
            select(Entity.id, Entity.document).where(Entity.id.in_(person_ids))
        ):
            records[entity_id] = MatchRecord.from_person(
                Person.model_validate_json(document), entity_id
            )
        return records
