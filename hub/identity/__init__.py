"""Identity resolution: one person across every system, explainably, with a human in the loop.

How the pipeline calls it
-------------------------
:class:`hub.pipeline.Pipeline` resolves the new person records of each batch
through :class:`ScoredResolver` (the :class:`~hub.identity.exact.PersonResolver`
interface): ``resolve_batch`` links, queues for review (the record still lands
as its own person) or makes a new person, with one set of queries per batch;
``record_batch`` keeps every link's score and evidence and queues the reviews.

Other callers resolve records one by one or in a batch::

    from hub.identity import IdentityResolver, MatchRecord, match_keys

    resolver = IdentityResolver()                      # reads config/identity.toml
    record = MatchRecord.from_person(person, record_id=None)
    resolution = resolver.resolve(record, session)     # or resolver.resolve_many([...], session)

``resolution.outcome`` is ``Outcome.LINK`` (attach the record to
``resolution.person_id``), ``Outcome.REVIEW`` (create the new person, then
``hub.store.identity.queue_review(session, new_id, resolution.person_id,
resolution.score, resolution.evidence.as_json())``) or ``Outcome.NO_LINK`` (a
new person). ``resolution.evidence.as_json()`` is what to keep with a link
(``hub.store.identity.record_link``) so the record page can say why;
``resolution.candidates`` lists every person compared.

When the pipeline writes a ``person_index`` row it also stores
``match_keys(person)`` (phonetic codes and birth year): the resolver's blocking
lookups read them.

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
from hub.identity.exact import Candidate, Resolution
from hub.identity.record import MatchRecord
from hub.identity.resolver import IdentityResolver, ScoredResolver, match_keys

__all__ = [
    "Candidate",
    "Evidence",
    "FieldEvidence",
    "GuardEvidence",
    "IdentityConfig",
    "IdentityResolver",
    "MatchRecord",
    "Matcher",
    "Outcome",
    "Resolution",
    "ScoredResolver",
    "load_identity_config",
    "match_keys",
]
