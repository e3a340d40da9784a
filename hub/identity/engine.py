"""The matching engine: block, compare, weigh, guard, decide, and say why.

:class:`Matcher` is the one engine behind both the pipeline's resolver and the
bulk ``carehub match`` / ``carehub dedupe`` commands. It scores pairs of
encoded records in batches (:class:`ScoredPairs`), and every pair it scores
can explain itself as :class:`Evidence`: its probability, and each field's
comparison level and weight, and each guard that overrode the score.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from hub.identity import comparisons as cmp
from hub.identity.blocking import Blocker, block_keys
from hub.identity.comparisons import COMPARISONS, FIELDS, Comparer, PairComparison
from hub.identity.config import IdentityConfig
from hub.identity.model import (
    MatchModel,
    TermFrequencies,
    estimate_em,
    estimate_m_and_prior,
    estimate_u,
)
from hub.identity.table import MISSING, Encoder, RecordTable
from hub.store.identity import Outcome

# Scored pairs carry their outcome as a small integer, an index into OUTCOMES (ordered, so capping is a minimum).
OUTCOMES = (Outcome.NO_LINK, Outcome.REVIEW, Outcome.LINK)
NO_LINK_CODE, REVIEW_CODE, LINK_CODE = (OUTCOMES.index(o) for o in (Outcome.NO_LINK, Outcome.REVIEW, Outcome.LINK))

# Guard bit -> (name, the outcome it caps or forces, the reason shown to a reviewer).
GUARDS: dict[int, tuple[str, Outcome, str]] = {
    cmp.NHS_VERIFIED_SAME: (
        "nhs_number_verified",
        Outcome.LINK,
        "both records carry the same verified NHS number",
    ),
    cmp.NHS_VERIFIED_DIFFERENT: (
        "nhs_number_verified",
        Outcome.NO_LINK,
        "the records carry different verified NHS numbers",
    ),
    cmp.NHS_CONFLICT: (
        "nhs_number_conflict",
        Outcome.REVIEW,
        "the records carry different NHS numbers that are both valid (not both verified): "
        "two people unless a person finds one number was mistyped",
    ),
    cmp.TWINS: (
        "twins",
        Outcome.REVIEW,
        "same birth date, surname and address but different given names: possibly twins",
    ),
    cmp.PARENT_CHILD: (
        "parent_child",
        Outcome.NO_LINK,
        "same name and address but birth dates a generation apart: parent and child",
    ),
    cmp.PARENT_CHILD_OR_TYPO: (
        "parent_child",
        Outcome.REVIEW,
        "same name and address, birth dates conflict: parent and child, or a mistyped date",
    ),
    cmp.DECEASED: (
        "deceased",
        Outcome.REVIEW,
        "one record is of a person who has died and the other is not",
    ),
    cmp.AMBIGUOUS: (
        "ambiguous",
        Outcome.REVIEW,
        "the record also matches someone who is not the same person: twins, or parent and child",
    ),
}


@dataclass(frozen=True, slots=True)
class FieldEvidence:
    """How one field compared: its comparison level and the weight (log2 Bayes factor) it added."""

    field: str
    level: str
    weight: float


@dataclass(frozen=True, slots=True)
class GuardEvidence:
    """A rule that overrode the score, the outcome it imposed, and why."""

    guard: str
    effect: Outcome
    reason: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a pair got its outcome; ``as_json()`` is kept in the store and shown on the record."""

    score: float
    match_weight: float
    prior_weight: float
    outcome: Outcome
    fields: tuple[FieldEvidence, ...]
    guards: tuple[GuardEvidence, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (no names, dates or numbers of the person: levels and weights only)."""
        return {
            "score": round(self.score, 6),
            "match_weight": round(self.match_weight, 3),
            "prior_weight": round(self.prior_weight, 3),
            "outcome": str(self.outcome),
            "fields": [
                {"field": f.field, "level": f.level, "weight": round(f.weight, 3)}
                for f in self.fields
            ],
            "guards": [
                {"guard": g.guard, "effect": str(g.effect), "reason": g.reason} for g in self.guards
            ],
        }


@dataclass(slots=True)
class ScoredPairs:
    """A batch of compared pairs with their field weights, probabilities and decisions."""

    pairs: PairComparison
    weights: npt.NDArray[np.float32]
    probability: npt.NDArray[np.float64]
    decisions: npt.NDArray[np.int8]
    prior_weight: float

    def __len__(self) -> int:
        return len(self.pairs)

    def select(self, mask: npt.NDArray[np.bool_]) -> ScoredPairs:
        """The pairs where ``mask`` is true."""
        p = self.pairs
        return ScoredPairs(
            PairComparison(p.left_rows[mask], p.right_rows[mask], p.levels[mask], p.guards[mask]),
            self.weights[mask],
            self.probability[mask],
            self.decisions[mask],
            self.prior_weight,
        )

    def outcome(self, k: int) -> Outcome:
        """The outcome of pair ``k``."""
        return OUTCOMES[int(self.decisions[k])]

    def evidence(self, k: int) -> Evidence:
        """Pair ``k``'s score, per-field levels and weights, and guards."""
        levels = self.pairs.levels[k]
        fields = tuple(
            FieldEvidence(name, COMPARISONS[name][int(levels[f])], float(self.weights[k, f]))
            for f, name in enumerate(FIELDS)
            if levels[f] > 0
        )
        flags = int(self.pairs.guards[k])
        guards = tuple(GuardEvidence(*GUARDS[bit]) for bit in GUARDS if flags & bit)
        return Evidence(
            score=float(self.probability[k]),
            match_weight=float(self.weights[k].sum()) + self.prior_weight,
            prior_weight=self.prior_weight,
            outcome=self.outcome(k),
            fields=fields,
            guards=guards,
        )


def apply_thresholds(
    probability: npt.NDArray[np.float64],
    guards: npt.NDArray[np.int16],
    link: float,
    review: float,
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64]]:
    """Outcomes from thresholds, then the guards: verified NHS numbers decide, others cap."""
    probability = probability.copy()
    decisions = np.where(
        probability >= link, LINK_CODE, np.where(probability >= review, REVIEW_CODE, NO_LINK_CODE)
    )
    same = (guards & cmp.NHS_VERIFIED_SAME) > 0
    different = (guards & cmp.NHS_VERIFIED_DIFFERENT) > 0
    decisions[same], probability[same] = LINK_CODE, 1.0
    decisions[different], probability[different] = NO_LINK_CODE, 0.0
    scored = ~same & ~different
    capped = scored & ((guards & (cmp.TWINS | cmp.PARENT_CHILD_OR_TYPO | cmp.NHS_CONFLICT)) > 0)
    decisions[capped] = np.minimum(decisions[capped], REVIEW_CODE)
    decisions[scored & ((guards & cmp.PARENT_CHILD) > 0)] = NO_LINK_CODE
    # Even a verified NHS number does not join a dead person's record to a live one unreviewed.
    deceased = ~different & ((guards & cmp.DECEASED) > 0)
    decisions[deceased] = np.minimum(decisions[deceased], REVIEW_CODE)
    return decisions.astype(np.int8), probability


class Matcher:
    """Scores record pairs with a Fellegi-Sunter model, under the identity configuration."""

    def __init__(
        self,
        config: IdentityConfig,
        encoder: Encoder | None = None,
        model: MatchModel | None = None,
    ) -> None:
        self.config = config
        self.encoder = encoder or Encoder()
        self.model = model or MatchModel.from_config(config)
        self.comparer = Comparer(self.encoder, config.guards)
        self.em_iterations = 0

    def score(
        self,
        left: RecordTable,
        right: RecordTable,
        left_rows: npt.NDArray[np.int64],
        right_rows: npt.NDArray[np.int64],
        strict: bool = False,
    ) -> ScoredPairs:
        """Compare, weigh and decide the pairs (left_rows[k], right_rows[k]); see Comparer."""
        pairs = self.comparer.compare(left, right, left_rows, right_rows, strict)
        weights = self.model.field_weights(pairs, left, right)
        probability = self.model.probability(weights.sum(axis=1))
        thresholds = self.config.thresholds
        decisions, probability = apply_thresholds(
            probability, pairs.guards, thresholds.link, thresholds.review
        )
        return ScoredPairs(pairs, weights, probability, decisions, self.model.prior_weight)

    def blocker(self, left: RecordTable, right: RecordTable | None) -> Blocker:
        """Candidate pairs of two tables (or of one table with itself when ``right`` is None)."""
        cfg = self.config.blocking
        left_keys = [block_keys(left, self.encoder, k) for k in cfg.passes]
        right_keys = (
            None if right is None else [block_keys(right, self.encoder, k) for k in cfg.passes]
        )
        return Blocker(left_keys, right_keys, cfg.max_block_pairs, cfg.chunk_pairs)

    def estimate(
        self, left: RecordTable, right: RecordTable | None = None, seed: int = 0
    ) -> MatchModel:
        """Estimate u, m, the prior and name frequencies from the tables; the matcher keeps them."""
        cfg = self.config.estimation
        rng = np.random.default_rng(seed)
        other = left if right is None else right
        tables = [left] if right is None else [left, right]
        model = replace(self.model, prior=1.0 / max(len(left), len(other), 2))
        if cfg.term_frequency:
            model = replace(
                model, term_frequencies=TermFrequencies.of(tables, len(self.encoder.names))
            )
        count = min(cfg.random_pairs, len(left) * len(other))
        li = rng.integers(0, len(left), count)
        ri = rng.integers(0, len(other), count)
        distinct = li != ri if right is None else np.ones(count, dtype=np.bool_)
        model = estimate_u(model, self.comparer.compare(left, other, li[distinct], ri[distinct]))

        sample = rng.choice(len(left), size=min(cfg.training_records, len(left)), replace=False)
        keys = [block_keys(left, self.encoder, k) for k in self.config.blocking.passes]
        masked = []
        for k in keys:
            only_sample = np.full_like(k, MISSING)
            only_sample[sample] = k[sample]
            masked.append(only_sample)
        other_keys = (
            keys
            if right is None
            else [block_keys(other, self.encoder, k) for k in self.config.blocking.passes]
        )
        blocker = Blocker(masked, other_keys, self.config.blocking.max_block_pairs, 10**9)
        chunks = [(a, b) for a, b, _ in blocker.chunks()]
        if chunks:
            tl = np.concatenate([a for a, _ in chunks])
            tr = np.concatenate([b for _, b in chunks])
            keep = tl != tr if right is None else np.ones(len(tl), dtype=np.bool_)
            training = self.comparer.compare(left, other, tl[keep], tr[keep])
            total = float(len(sample)) * (len(other) - (1 if right is None else 0))
            if len(training) < cfg.min_training_pairs:
                pass  # too little to learn from: the configured m and the 1/n prior stand
            elif cfg.method == "em" or (cfg.method == "auto" and not self.comparer.relatives):
                # EM assumes fields agree independently given match status; households break
                # that (surname and address agree together among non-matches), so "auto" uses
                # EM only where the data shows no households, else leave-one-out.
                model, self.em_iterations = estimate_em(
                    model, training, total, cfg.prior_pairs, cfg.em_iterations
                )
            else:
                model = estimate_m_and_prior(
                    model,
                    training,
                    left,
                    other,
                    total,
                    cfg.high_confidence,
                    cfg.rounds,
                )
        self.model = model
        return model

    def learn_source(
        self, batch: RecordTable, known: RecordTable | None, seed: int = 0
    ) -> MatchModel | None:
        """m and u learned from one source's batch of records and the persons already known.

        The pipeline's resolver calls this once per source per sync (on a batch of at least
        ``estimation.min_source_records``): u from random pairs of the batch's own records
        (one source's records are mostly different people), m from the batch's candidate
        pairs among the known persons and within the batch, by ``estimation.method`` (the
        resolver keeps the relatives' guards on, so "auto" is leave-one-out). No term
        frequencies (the resolver scores a handful of candidates per record). Returns None
        when there is too little to learn from; the matcher's model is left as it was.
        """
        cfg = self.config.estimation
        rng = np.random.default_rng(seed)
        n = len(batch)
        if n < 2:
            return None
        count = min(cfg.random_pairs, n * (n - 1))
        li, ri = rng.integers(0, n, count), rng.integers(0, n, count)
        distinct = li != ri
        model = estimate_u(self.model, self.comparer.compare(batch, batch, li[distinct], ri[distinct]))
        levels, guards, lrows, rrows = [], [], [], []
        sides: list[RecordTable | None] = [None]
        if known is not None and len(known):
            sides.insert(0, known)
        for other in sides:
            for a, b, _ in self.blocker(batch, other).chunks():
                if len(a):
                    compared = self.comparer.compare(batch, batch if other is None else other, a, b)
                    levels.append(compared.levels)
                    guards.append(compared.guards)
                    lrows.append(a)
                    rrows.append(b)
        if not levels or sum(len(x) for x in levels) < cfg.min_training_pairs:
            return None
        training = PairComparison(
            np.concatenate(lrows), np.concatenate(rrows), np.concatenate(levels), np.concatenate(guards)
        )
        population = n + (len(known) if known is not None else 0)
        total = float(n) * max(population - 1, 1)
        model = replace(model, prior=min(cfg.expected_known_share / max(population, 1), 0.5))
        # Term frequencies off: the pairs mix two tables, and the resolver weighs names by level.
        model = replace(model, term_frequencies=None)
        if cfg.method == "em" or (cfg.method == "auto" and not self.comparer.relatives):
            model, self.em_iterations = estimate_em(
                model, training, total, cfg.prior_pairs, cfg.em_iterations
            )
        else:
            model = estimate_m_and_prior(
                model, training, batch, batch, total, cfg.high_confidence, cfg.rounds
            )
        return model

    def ambiguous(
        self,
        left: RecordTable,
        right: RecordTable | None,
        left_rows: npt.NDArray[np.int64],
        right_rows: npt.NDArray[np.int64],
        weights: npt.NDArray[np.float64] | None = None,
    ) -> npt.NDArray[np.bool_]:
        """Which linked pairs are ambiguous: one record linked to two that are not one person.

        ``weights`` (each link's match weight) lets a clear winner stand in data without
        households (relatives' guards off): a link whose weight beats every other link of its
        record by ``guards.ambiguity_margin_bits`` is kept; the others are still ambiguous.

        A record with a missing given name or birth date can score as high against each
        twin, or against parent and child, as against itself. When a record links to
        several others, those others are compared with each other; unless they all link
        too (one person recorded twice), every link of that record is ambiguous.
        """
        dedupe = right is None
        other = left if right is None else right
        ends: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], RecordTable]] = []
        if dedupe:
            ends.append(
                (
                    np.concatenate([left_rows, right_rows]),
                    np.concatenate([right_rows, left_rows]),
                    left,
                )
            )
        else:
            ends.append((right_rows, left_rows, left))
            ends.append((left_rows, right_rows, other))
        flagged = np.zeros(len(left_rows), dtype=np.bool_)
        if weights is not None and dedupe:
            weights = np.concatenate([weights, weights])
        for hub_rows, spoke_rows, spoke_table in ends:
            order = np.argsort(hub_rows, kind="stable")
            hubs, starts, counts = np.unique(hub_rows[order], return_index=True, return_counts=True)
            busy = counts > 1
            if not busy.any():
                continue
            pa: list[int] = []
            pb: list[int] = []
            owner: list[int] = []
            for h, start, count in zip(
                hubs[busy].tolist(), starts[busy].tolist(), counts[busy].tolist(), strict=True
            ):
                spokes = spoke_rows[order[start : start + count]].tolist()
                for i, a in enumerate(spokes):
                    for b in spokes[i + 1 :]:
                        pa.append(a)
                        pb.append(b)
                        owner.append(h)
            # Two records of one file that both match a third record of the other file are
            # more likely two people (twins Luca and Lucas) than a typo: judge them strictly.
            # Within one file being deduplicated, near-identical records are the duplicates.
            scored = self.score(
                spoke_table, spoke_table, np.array(pa), np.array(pb), strict=not dedupe
            )
            # Spokes are two people when they cannot be one (no link) or a guard says so;
            # a merely unsure pair of spokes is left to the links' own scores. In data without
            # households (relatives' guards off) two weak spokes of one strong hub are one
            # person recorded badly twice when deduplicating: only a guard (NHS numbers) splits them.
            flags = cmp.TWINS | cmp.PARENT_CHILD | cmp.PARENT_CHILD_OR_TYPO | cmp.NHS_CONFLICT
            flags |= cmp.NHS_VERIFIED_DIFFERENT
            apart = (scored.pairs.guards & flags) > 0
            # (Two records of one file of a link both fitting one record stay ambiguous.)
            if self.comparer.relatives or not dedupe:
                apart |= scored.decisions == NO_LINK_CODE
            split = {h for h, a in zip(owner, apart.tolist(), strict=True) if a}
            if split:
                # In dedupe each pair was listed from both of its ends: fold the two halves.
                bad = np.isin(hub_rows, list(split))
                if weights is not None and not self.comparer.relatives:
                    bad &= ~self._clear_winners(hub_rows, weights, bad)
                flagged |= bad.reshape(-1, len(left_rows)).any(axis=0)
        return flagged

    def _clear_winners(
        self,
        hub_rows: npt.NDArray[np.int64],
        weights: npt.NDArray[np.float64],
        among: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.bool_]:
        """Links (of ``among``) that beat every other link of their hub by the margin."""
        rows = np.flatnonzero(among)
        order = rows[np.lexsort((-weights[rows], hub_rows[rows]))]
        hubs = hub_rows[order]
        first = np.ones(len(order), dtype=np.bool_)
        first[1:] = hubs[1:] != hubs[:-1]
        second = np.zeros(len(order), dtype=np.bool_)
        second[1:] = first[:-1] & ~first[1:]
        runner_up = np.full(len(order), -np.inf)
        # The best of each hub sits at `first`; its runner-up right after it.
        runner_up[np.flatnonzero(second) - 1] = weights[order[second]]
        margin = self.config.guards.ambiguity_margin_bits
        wins = first & (weights[order] - runner_up >= margin)
        out = np.zeros(len(hub_rows), dtype=np.bool_)
        out[order[wins]] = True
        return out

    def link(
        self,
        left: RecordTable,
        right: RecordTable | None = None,
        on_progress: Callable[[int], None] | None = None,
        blocker: Blocker | None = None,
    ) -> Iterator[ScoredPairs]:
        """Every candidate pair at or above the review threshold (or set by a guard), in batches.

        With ``right`` None the table is deduplicated against itself (each pair once).
        ``on_progress`` receives the number of pairs generated by each batch; ``blocker``
        is one already planned by :meth:`blocker` for these tables.
        """
        other = left if right is None else right
        for left_rows, right_rows, generated in (blocker or self.blocker(left, right)).chunks():
            if len(left_rows):
                scored = self.score(left, other, left_rows, right_rows)
                keep = scored.decisions > NO_LINK_CODE
                if keep.any():
                    yield scored.select(keep)
            if on_progress is not None:
                on_progress(generated)
