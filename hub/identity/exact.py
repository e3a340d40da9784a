"""The pipeline's identity step: the resolver interface, and the foundation's exact rule.

:class:`PersonResolver` is what :class:`hub.pipeline.Pipeline` calls for the
person records of a batch that no golden person holds yet: ``resolve_batch``
answers which person each one is (or that it is a new person, perhaps to be
put before a reviewer), and ``record_batch`` keeps the links and queues the
reviews in the batch's transaction. The scored engine
(:class:`hub.identity.resolver.ScoredResolver`) is the default;
:class:`ExactResolver` keeps the foundation's rule: a verified NHS number
decides, nothing else does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.identity.record import MatchRecord
from hub.store.identity import record_links
from hub.store.tables import PersonIndex


@dataclass(frozen=True, slots=True)
class PersonCandidate:
    """A person record from a source that has no golden person yet.

    ``record`` is the validated person as the matcher sees it (``MatchRecord.from_person``, its id
    ``new_id``); ``new_id`` is the id the record's golden person gets if it is nobody the hub knows.
    ``fields`` are the record's :func:`~hub.identity.table.normalised_fields` when already computed
    (by the sync's reader process).
    """

    source: str
    stream: str
    source_id: str
    record: MatchRecord
    new_id: str = ""
    fields: Sequence[Any] | None = None

    @property
    def ref(self) -> str:
        """The record as ``source/stream/source_id`` (how a link names it)."""
        return f"{self.source}/{self.stream}/{self.source_id}"


@dataclass(frozen=True, slots=True)
class Resolution:
    """Which golden person a candidate is (None: a new person), and why.

    ``evidence`` explains a link (score, per-field levels and weights, guards);
    ``review_with`` names the person a new person must be checked against by a
    reviewer (never a silent merge), with ``evidence`` for that pair.
    """

    person_id: str | None
    rule: str
    score: float | None = None
    evidence: dict[str, Any] | None = None
    review_with: str | None = None


class PersonResolver(Protocol):
    """Decides, for new person records, which golden person each one is."""

    def resolve_batch(self, session: Session, candidates: Sequence[PersonCandidate]) -> list[Resolution]:
        """One resolution per candidate, in order; candidates in one batch may resolve to each other."""
        ...

    def record_batch(
        self, session: Session, candidates: Sequence[PersonCandidate], resolutions: Sequence[Resolution]
    ) -> None:
        """Keep the batch's links with their evidence and queue its reviews (caller's transaction)."""
        ...


class ExactResolver:
    """Links on a verified NHS number only."""

    def resolve_batch(self, session: Session, candidates: Sequence[PersonCandidate]) -> list[Resolution]:
        """Join verified NHS numbers to the active person that holds them, in store or in batch."""
        numbers = {c.record.nhs_number for c in candidates if c.record.nhs_verified}
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
            number = c.record.nhs_number if c.record.nhs_verified else None
            if number and number in known:
                out.append(Resolution(known[number], "verified_nhs_number", 1.0, _NHS_EVIDENCE))
            else:
                out.append(Resolution(None, "new_person"))
                if number and c.new_id:
                    known[number] = c.new_id
        return out

    def record_batch(
        self, session: Session, candidates: Sequence[PersonCandidate], resolutions: Sequence[Resolution]
    ) -> None:
        """Keep each link with its rule as evidence."""
        record_links(session, [
            {"person_a": r.person_id, "person_b": c.ref, "score": r.score or 1.0, "evidence": r.evidence or {}}
            for c, r in zip(candidates, resolutions, strict=True) if r.person_id is not None
        ])


_NHS_EVIDENCE: dict[str, Any] = {
    "score": 1.0, "outcome": "link", "fields": [{"field": "nhs_number", "level": "same", "weight": 0.0}],
    "guards": [{"guard": "nhs_number_verified", "effect": "link",
                "reason": "both records carry the same verified NHS number"}],
}
