"""The pipeline's identity step: the resolver interface.

:class:`PersonResolver` is what :class:`hub.pipeline.Pipeline` calls for the
person records of a batch that no golden person holds yet: ``resolve_batch``
answers which person each one is (or that it is a new person, perhaps to be
put before a reviewer), and ``record_batch`` keeps the links and queues the
reviews in the batch's transaction; during a sync ``remembering`` keeps what it
may between batches, and ``persons_written`` hears what each batch wrote to the
person index. The scored engine (:class:`hub.identity.resolver.ScoredResolver`)
is the one implementation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from hub.identity.engine import Evidence
from hub.identity.record import MatchRecord
from hub.store.identity import Outcome


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
class Candidate:
    """One existing person the record was compared with, and how it came out."""

    person_id: str
    score: float
    outcome: Outcome
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class Resolution:
    """The one answer for a record: which golden person it is, ask a reviewer, or a new person.

    ``outcome`` LINK joins the record to ``person_id``; REVIEW makes the record a new person
    and puts the pair (new person, ``person_id``) before a reviewer (never a silent merge);
    NO_LINK makes it a new person (``person_id`` None). ``evidence`` explains the outcome
    against the best candidate (None when there was no candidate at all); ``candidates``
    lists every person compared, best first.
    """

    outcome: Outcome
    person_id: str | None
    score: float
    evidence: Evidence | None
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)

    @property
    def joins(self) -> str | None:
        """The golden person the record joins (a LINK), else None: the record is a new person."""
        return self.person_id if self.outcome == Outcome.LINK else None

    @property
    def review_with(self) -> str | None:
        """The person a reviewer must check the new person against (a REVIEW), else None."""
        return self.person_id if self.outcome == Outcome.REVIEW else None

    @property
    def rule(self) -> str:
        """Why, in a word: ``verified_nhs_number``, ``scored_link``, ``review`` or ``new_person``."""
        if self.outcome == Outcome.LINK:
            verified = self.evidence is not None and any(
                g.guard == "nhs_number_verified" for g in self.evidence.guards)
            return "verified_nhs_number" if verified else "scored_link"
        return "review" if self.outcome == Outcome.REVIEW else "new_person"


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

    def remembering(self) -> AbstractContextManager[None]:
        """Keep what the resolver learns of the store between a sync's batches while the block runs."""
        ...

    def persons_written(self, session: Session, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                        replaced: Iterable[str], identifiers: Iterable[tuple[str, str, str]]) -> None:
        """What a batch wrote to ``person_index`` and ``person_identifiers``, after its outbox rows."""
        ...
