"""What identity resolution takes and answers: :class:`PersonCandidate` in, :class:`Resolution` out.

:class:`hub.identity.resolver.PersonResolver` answers one :class:`Resolution` per
:class:`PersonCandidate` (a person record no golden person holds yet): join a known person, ask a
reviewer, or a new person; each with the :class:`Candidate` persons that were worth it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
    """A person the record may be (a link or a review), with its score and why."""

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
    against the best candidate (None when no person was worth a link or a review); ``candidates``
    are the persons compared whose pair came out a link or a review (against the persons in the
    store, or a record earlier in the same batch, by the id its person gets), best first: a person
    compared and found to be someone else is not listed.
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
