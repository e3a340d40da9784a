"""Identity resolution: one person across every system, explainably, with a human in the loop.

How it is called
----------------
:class:`PersonResolver` is the one resolver. :class:`hub.pipeline.Pipeline` gives it the new
person records of each batch; any other caller does the same::

    from hub.identity import MatchRecord, PersonCandidate, PersonResolver

    resolver = PersonResolver()                        # reads config/identity.toml
    candidate = PersonCandidate("hospital", "patients", "P-1042",
                                MatchRecord.from_person(person, new_id), new_id)
    [resolution] = resolver.resolve_batch(session, [candidate])
    resolver.record_batch(session, [candidate], [resolution])   # keep the link, queue the review

``resolution.outcome`` is ``Outcome.LINK`` (the record joins ``resolution.joins``),
``Outcome.REVIEW`` (the record becomes the new person ``new_id``, and ``record_batch`` puts the
pair (``new_id``, ``resolution.review_with``) before a reviewer) or ``Outcome.NO_LINK`` (a new
person). ``resolution.evidence.as_json()`` is what ``record_batch`` keeps with a link so the
record page can say why; ``resolution.candidates`` are the persons whose pair came out a link or
a review, best first. Records of one batch may resolve to each other. During a sync,
``remembering()`` keeps the persons' blocking keys in memory between batches and
``persons_written(...)`` tells the resolver what each batch wrote; ``candidate_ids`` answers
which persons a record is compared with.

When the golden-record writer writes a ``person_index`` row it also stores
``document_match_keys`` (phonetic codes, birth year and the matcher's normalised fields): the
resolver's blocking lookups read them.

Review decisions, merge and unmerge are store functions in
:mod:`hub.store.identity` (``queue_review``) and :mod:`hub.store.merges` (``answer_review``, ``merge``, ``unmerge``);
each writes its outbox events in the caller's transaction.

The bulk commands (``carehub match``, ``carehub dedupe``) run the same engine
(:class:`~hub.identity.engine.Matcher`) over CSV files: :mod:`hub.identity.bulk`.
The method, weights, thresholds and guards are described in docs/identity.md.
"""

from __future__ import annotations

from hub.identity.config import IdentityConfig, load_identity_config
from hub.identity.engine import Evidence, FieldEvidence, GuardEvidence, Matcher, Outcome
from hub.identity.record import MatchRecord
from hub.identity.resolution import Candidate, PersonCandidate, Resolution
from hub.identity.resolver import PersonResolver

__all__ = [
    "Candidate",
    "Evidence",
    "FieldEvidence",
    "GuardEvidence",
    "IdentityConfig",
    "MatchRecord",
    "Matcher",
    "Outcome",
    "PersonCandidate",
    "PersonResolver",
    "Resolution",
    "load_identity_config",
]
