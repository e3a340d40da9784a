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
import orjson
from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from hub.identity import comparisons as cmp
from hub.identity import normalise
from hub.identity.config import IdentityConfig, load_identity_config
from hub.identity.engine import GUARDS, OUTCOMES, Evidence, GuardEvidence, Matcher, Outcome
from hub.identity.engine import NO_LINK as NOT_LINKED
from hub.identity.exact import PersonCandidate
from hub.identity.exact import Resolution as PersonResolution
from hub.identity.model import MatchModel
from hub.identity.record import MatchRecord
from hub.model import Person
from hub.store.identity import NO_LINK, ordered_pair, queue_reviews, record_links, remembered_decisions
from hub.store.tables import Entity, PersonIdentifier, PersonIndex

ACTIVE = "active"
# The blocking keys the resolver looks candidates up by, besides local identifiers.
_KEY_KINDS = ("nhs", "birth", "family_year", "given_year", "postcode")


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


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day) if year and month and day else None
    except ValueError:
        return None


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
        matcher = self._matcher(session, len(candidates))
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

    def _matcher(self, session: Session, incoming: int) -> Matcher:
        """A matcher whose prior is the share of known people over the population they may be among.

        The population is the active persons plus the incoming records, and never fewer than
        ``estimation.population_floor``: an almost empty store must not make a weak match likely.
        """
        active = session.scalar(
            select(func.count()).select_from(PersonIndex).where(PersonIndex.status == ACTIVE)
        )
        cfg = self.config.estimation
        population = max(int(active or 0) + incoming, cfg.population_floor, 1)
        prior = min(cfg.expected_known_share / population, 0.5)
        return Matcher(self.config, model=MatchModel.from_config(self.config, prior=prior))

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
        """Active persons sharing at least one blocking key with each record (one query per batch).

        The rows found are indexed by each key once, so a batch of thousands of records
        costs one pass over the rows, not records x rows.
        """
        keys: list[dict[str, Any]] = []
        for record in records:
            family = normalise.family_name(record.family_name)
            given = normalise.given_name(record.given_name)
            year, month, day = normalise.birth_parts(record.birth_date)
            postcode = normalise.postcode_parts(record.postcode)
            keys.append(
                {
                    "nhs": normalise.nhs_number(record.nhs_number),
                    "birth": _date(year, month, day),
                    "family_year": (jellyfish.soundex(family), year) if family and year else None,
                    "given_year": (jellyfish.soundex(given), year) if given and year else None,
                    "postcode": (postcode[0], given[0].upper()) if postcode and given else None,
                    "identifiers": list(record.identifiers),
                }
            )
        idx = PersonIndex
        conditions = []
        nhs = {k["nhs"] for k in keys if k["nhs"]}
        births = {k["birth"] for k in keys if k["birth"]}
        family_years = {k["family_year"] for k in keys if k["family_year"]}
        given_years = {k["given_year"] for k in keys if k["given_year"]}
        postcode_initials = {k["postcode"] for k in keys if k["postcode"]}
        if nhs:
            conditions.append(idx.nhs_number.in_(nhs))
        if births:
            conditions.append(idx.birth_date.in_(births))
        if family_years:
            conditions.append(tuple_(idx.family_phonetic, idx.birth_year).in_(family_years))
        if given_years:
            conditions.append(tuple_(idx.given_phonetic, idx.birth_year).in_(given_years))
        if postcode_initials:
            # The postcode index finds the households; the initial, checked in SQL, keeps only the likely people.
            conditions.append(and_(
                idx.postcode.in_({code for code, _ in postcode_initials}),
                tuple_(idx.postcode, func.substr(idx.given_name, 1, 1)).in_(postcode_initials),
            ))
        found: dict[str, dict[Any, list[str]]] = {kind: {} for kind in (*_KEY_KINDS, "identifier")}
        if conditions:
            by_nhs, by_birth, by_family, by_given, by_postcode = (found[kind] for kind in _KEY_KINDS)
            # Core rows, not ORM rows: thousands per batch, and the ORM's row handling costs more than the query.
            rows = session.connection().execute(
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
            )
            for pid, nhs_number, birth, fam, giv, born_in, code, given_name in rows:
                if nhs_number:
                    by_nhs.setdefault(nhs_number, []).append(pid)
                if birth:
                    by_birth.setdefault(birth, []).append(pid)
                if born_in:
                    if fam:
                        by_family.setdefault((fam, born_in), []).append(pid)
                    if giv:
                        by_given.setdefault((giv, born_in), []).append(pid)
                if code and given_name:
                    by_postcode.setdefault((code, given_name[0]), []).append(pid)
        pairs = {(s, v) for k in keys for s, v in k["identifiers"]}
        if pairs:
            by_identifier = found["identifier"]
            for pid, system, value in session.connection().execute(
                select(PersonIdentifier.person_id, PersonIdentifier.system, PersonIdentifier.value)
                .join(idx, idx.person_id == PersonIdentifier.person_id)
                .where(
                    idx.status == ACTIVE,
                    tuple_(PersonIdentifier.system, PersonIdentifier.value).in_(pairs),
                )
            ):
                by_identifier.setdefault((system, value), []).append(pid)
        out: list[set[str]] = []
        empty: list[str] = []
        for k in keys:
            ids: set[str] = set()
            for kind in _KEY_KINDS:
                if k[kind]:
                    ids.update(found[kind].get(k[kind], empty))
            for pair in k["identifiers"]:
                ids.update(found["identifier"].get(pair, empty))
            out.append(ids)
        return out

    @staticmethod
    def _load(session: Session, person_ids: list[str]) -> dict[str, MatchRecord]:
        """Candidate persons' documents as match records."""
        records: dict[str, MatchRecord] = {}
        if not person_ids:
            return records
        for entity_id, document in session.connection().execute(
            select(Entity.id, Entity.document).where(Entity.id.in_(person_ids))
        ):
            records[entity_id] = MatchRecord.from_document(orjson.loads(document), entity_id)
        return records


class ScoredResolver(IdentityResolver):
    """The pipeline's resolver: the scored engine behind :class:`~hub.identity.exact.PersonResolver`.

    For a batch of new person records it reads candidates from the store with one
    blocking query (plus one for local identifiers), scores them and the batch's
    own records against each other in one vectorised pass each, then decides in
    batch order, so a record may join a person an earlier record of the same batch
    created. A link joins the record to the person; a review leaves the record as
    a new person and queues the pair for a reviewer; guards cap what the score says.
    """

    def resolve_batch(self, session: Session, candidates: Sequence[PersonCandidate]) -> list[PersonResolution]:
        """One resolution per candidate, in order (see the class)."""
        if not candidates:
            return []
        records = [MatchRecord.from_person(c.person, c.new_id) for c in candidates]
        found = self._candidate_ids(session, records)
        persons = self._load(session, sorted({pid for ids in found for pid in ids}))
        person_ids = sorted(persons)
        matcher = self._matcher(session, len(records))
        left = matcher.encoder.encode(records)
        options: list[list[tuple[int, float, int, Evidence | None]]] = [[] for _ in records]
        # Against the store: keep only pairs worth a link or a review.
        if person_ids:
            right = matcher.encoder.encode(persons[pid] for pid in person_ids)
            column = {pid: k for k, pid in enumerate(person_ids)}
            li = [row for row, ids in enumerate(found) for pid in ids if pid in column]
            ri = [column[pid] for ids in found for pid in ids if pid in column]
            scored = matcher.score(left, right, np.array(li, dtype=np.int64), np.array(ri, dtype=np.int64))
            for k in np.flatnonzero(scored.decisions > NOT_LINKED).tolist():
                options[li[k]].append((-1 - ri[k], float(scored.probability[k]), int(scored.decisions[k]),
                                       scored.evidence(k)))
        # Within the batch: a pair is considered by its later record.
        for a, b, _ in matcher.blocker(left, None).chunks():
            if not len(a):
                continue
            scored = matcher.score(left, left, a, b)
            for k in np.flatnonzero(scored.decisions > NOT_LINKED).tolist():
                first, later = sorted((int(a[k]), int(b[k])))
                options[later].append((first, float(scored.probability[k]), int(scored.decisions[k]),
                                       scored.evidence(k)))
        assigned: list[str] = []
        out: list[PersonResolution] = []
        for row, candidate in enumerate(candidates):
            best: dict[str, Candidate] = {}
            for other, probability, decision, evidence in options[row]:
                pid = person_ids[-1 - other] if other < 0 else assigned[other]
                assert evidence is not None
                if pid not in best or best[pid].score < probability:
                    best[pid] = Candidate(pid, probability, OUTCOMES[decision], evidence)
            answer = self._answer(sorted(best.values(), key=lambda c: (-c.score, c.person_id)))
            resolution = _as_pipeline_resolution(answer)
            out.append(resolution)
            assigned.append(resolution.person_id or candidate.new_id)
        return out

    def record_batch(
        self, session: Session, candidates: Sequence[PersonCandidate], resolutions: Sequence[PersonResolution]
    ) -> None:
        """Keep every link with its score and evidence, and queue every review, one statement each."""
        links, reviews = [], []
        for candidate, resolution in zip(candidates, resolutions, strict=True):
            if resolution.person_id is not None:
                links.append({"person_a": resolution.person_id, "person_b": candidate.ref,
                              "score": resolution.score or 0.0, "evidence": resolution.evidence or {}})
            elif resolution.review_with is not None:
                reviews.append({"person_a": candidate.new_id, "person_b": resolution.review_with,
                                "score": resolution.score or 0.0, "evidence": resolution.evidence or {}})
        record_links(session, links)
        queue_reviews(session, reviews)


def _as_pipeline_resolution(answer: Resolution) -> PersonResolution:
    evidence = answer.evidence.as_json() if answer.evidence is not None else None
    if answer.outcome == Outcome.LINK:
        verified = answer.evidence is not None and any(
            g.guard == "nhs_number_verified" for g in answer.evidence.guards)
        return PersonResolution(answer.person_id, "verified_nhs_number" if verified else "scored_link",
                                answer.score, evidence)
    if answer.outcome == Outcome.REVIEW:
        return PersonResolution(None, "review", answer.score, evidence, review_with=answer.person_id)
    return PersonResolution(None, "new_person")
