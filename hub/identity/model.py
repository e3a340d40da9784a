"""The Fellegi-Sunter model: m and u per comparison level, a prior, and their estimation.

For each field a pair falls into a level; the level's weight is
``log2(m / u)``, where ``m`` is how often true matches fall into it and ``u``
how often random pairs do. A pair's score is the prior's log-odds plus the sum
of its field weights, turned into a match probability.

Estimation (the bulk commands and the sync, from the data in hand):

* **u from random pairs**: among random pairs almost none are matches, so the
  share of random pairs in each level is ``u``.
* **m and the prior by EM** (:func:`estimate_em`) over the candidate pairs of a
  sample of records, u held fixed, the configured m as a Dirichlet prior worth
  ``estimation.prior_pairs`` pairs (so a tiny input keeps the shipped weights).
* (:func:`estimate_m_and_prior`, m from high-confidence pairs leaving the field
  out, is kept for comparison: ``estimation.method = "leave_one_out"``.)
* **term frequency**: an exact match on a name is weighed against how common
  that name is in the data (``log2(m / frequency)``) rather than the average u.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from hub.identity.comparisons import COMPARISONS, FIELDS, MAX_LEVELS, PairComparison, level
from hub.identity.config import IdentityConfig
from hub.identity.table import IntArray, RecordTable

FloatArray = npt.NDArray[np.float64]
# The rarest a name is taken to be: one in this many records, so one odd spelling
# cannot outweigh every other field.
TF_FLOOR = 1e-5
_GIVEN_EXACT = level("given_name", "exact")
_FAMILY_EXACT = level("family_name", "exact")
# The layout of m and u (fields, their levels, the padded width): a stored model is read only into this one.
_LAYOUT = {"fields": list(FIELDS), "levels": {name: list(COMPARISONS[name]) for name in FIELDS},
           "width": MAX_LEVELS}


@dataclass(frozen=True, slots=True)
class TermFrequencies:
    """How common each name (by code) is among the records being matched."""

    given: FloatArray
    family: FloatArray

    @classmethod
    def of(cls, tables: list[RecordTable], vocabulary_size: int) -> TermFrequencies:
        """Name frequencies over the given tables (each side counted)."""

        def share(columns: list[IntArray]) -> FloatArray:
            codes = (
                np.concatenate([c[c >= 0] for c in columns]) if columns else np.zeros(0, np.int64)
            )
            counts = np.bincount(codes, minlength=vocabulary_size).astype(np.float64)
            return counts / max(len(codes), 1)

        return cls(share([t.given for t in tables]), share([t.family for t in tables]))


@dataclass(frozen=True, slots=True)
class MatchModel:
    """m and u per field and level (fields x levels), the prior, and optional name frequencies."""

    m: FloatArray
    u: FloatArray
    prior: float
    term_frequencies: TermFrequencies | None = field(default=None)

    @classmethod
    def from_config(cls, config: IdentityConfig, prior: float = 1e-4) -> MatchModel:
        """The shipped default weights of config/identity.toml (levels not listed weigh 0)."""
        m = np.full((len(FIELDS), MAX_LEVELS), 0.5)
        u = np.full((len(FIELDS), MAX_LEVELS), 0.5)
        for f, name in enumerate(FIELDS):
            weights = config.weights.get(name)
            if weights is None:
                continue
            for lv, level_name in enumerate(COMPARISONS[name]):
                if level_name in weights.m and level_name in weights.u:
                    m[f, lv], u[f, lv] = weights.m[level_name], weights.u[level_name]
        return cls(m=m, u=u, prior=prior)

    def to_json(self) -> dict[str, Any]:
        """Everything but the prior (always the store's) as JSON: m and u as fields x levels lists of
        floats (a float's JSON text reads back as the same float), the layout they are in, the name
        frequencies if any. :meth:`from_json` reads it back exactly."""
        tf = self.term_frequencies
        return {
            **_LAYOUT,
            "m": self.m.tolist(),
            "u": self.u.tolist(),
            "term_frequencies": None if tf is None else {"given": tf.given.tolist(), "family": tf.family.tolist()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], prior: float) -> MatchModel:
        """The model :meth:`to_json` wrote, with ``prior``; ValueError when it was written for other
        comparison levels than the code's."""
        if {key: data.get(key) for key in _LAYOUT} != _LAYOUT:
            raise ValueError("the stored model was learned for other comparison levels")
        shape = (len(FIELDS), MAX_LEVELS)
        m, u = np.array(data["m"], dtype=np.float64), np.array(data["u"], dtype=np.float64)
        if m.shape != shape or u.shape != shape:
            raise ValueError(f"the stored model's m and u are not {shape}")
        tf = data.get("term_frequencies")
        frequencies = (None if tf is None else TermFrequencies(np.array(tf["given"], dtype=np.float64),
                                                               np.array(tf["family"], dtype=np.float64)))
        return cls(m=m, u=u, prior=prior, term_frequencies=frequencies)

    @property
    def prior_weight(self) -> float:
        """The prior as a log2 odds."""
        return float(np.log2(self.prior / (1 - self.prior)))

    def level_weights(self) -> FloatArray:
        """log2(m/u) per field and level; ``missing`` weighs 0."""
        weights = np.log2(self.m / self.u)
        weights[:, 0] = 0.0
        return weights

    def field_weights(
        self,
        pairs: PairComparison,
        left: RecordTable,
        right: RecordTable,
    ) -> npt.NDArray[np.float32]:
        """Each pair's weight per field (pairs x fields), term-frequency adjusted when known."""
        weights = self.level_weights()
        cols = np.arange(len(FIELDS))
        out = weights[cols[None, :], pairs.levels.astype(np.int64)].astype(np.float32)
        tf = self.term_frequencies
        if tf is not None:
            for f, exact, codes, freq in (
                (0, _GIVEN_EXACT, left.given[pairs.left_rows], tf.given),
                (1, _FAMILY_EXACT, left.family[pairs.left_rows], tf.family),
            ):
                # Names first seen after the frequencies were counted keep the level weight.
                rows = (pairs.levels[:, f] == exact) & (codes < len(freq))
                if rows.any():
                    share = np.maximum(freq[codes[rows]], TF_FLOOR)
                    out[rows, f] = np.log2(self.m[f, exact] / share).astype(np.float32)
        return out

    def probability(self, total_weight: npt.NDArray[np.floating]) -> FloatArray:
        """Match probability from the summed field weights (prior added here)."""
        return 1.0 / (1.0 + np.exp2(-(total_weight.astype(np.float64) + self.prior_weight)))


def model_fingerprint(config: IdentityConfig) -> str:
    """A hash of what a learned model is made from besides the data (SHA-256, hex).

    A model stored with another fingerprint is stale: the configured ``weights`` (the starting m
    and u, and EM's prior), ``estimation`` (the method and its parameters; not
    ``min_source_records``, which says when to learn, not what, nor ``estimate``, which the
    resolver checks itself), ``blocking`` (which pairs it is trained on) and the code's
    comparison levels (the layout of m and u). The thresholds and guards are not in it: they
    decide from the score, so a new threshold applies to a learned model at once.
    """
    made_of = {
        "layout": _LAYOUT,
        "weights": {name: w.model_dump() for name, w in config.weights.items()},
        "estimation": config.estimation.model_dump(exclude={"min_source_records", "estimate"}),
        "blocking": config.blocking.model_dump(mode="json"),
    }
    return hashlib.sha256(orjson.dumps(made_of, option=orjson.OPT_SORT_KEYS)).hexdigest()


def level_shares(
    column: npt.NDArray[np.int8], f: int, fallback: FloatArray, minimum: int = 20
) -> FloatArray:
    """Share of each level of field ``f`` among non-missing values, smoothed (else ``fallback``)."""
    n_levels = len(COMPARISONS[FIELDS[f]]) - 1
    counts = np.bincount(column[column > 0], minlength=n_levels + 1)[1 : n_levels + 1].astype(
        np.float64
    )
    if counts.sum() < minimum:
        return fallback.copy()
    out = fallback.copy()
    out[1 : n_levels + 1] = (counts + 0.5) / (counts.sum() + 0.5 * n_levels)
    return out


def estimate_u(model: MatchModel, random_pairs: PairComparison) -> MatchModel:
    """u as the share of random pairs in each level."""
    u = np.stack(
        [level_shares(random_pairs.levels[:, f], f, model.u[f]) for f in range(len(FIELDS))]
    )
    return replace(model, u=u)


def estimate_m_and_prior(
    model: MatchModel,
    pairs: PairComparison,
    left: RecordTable,
    right: RecordTable,
    total_pairs: float,
    high_confidence: float,
    rounds: int,
) -> MatchModel:
    """m from high-confidence pairs (leaving the field out) and the prior, ``rounds`` times."""
    threshold = float(np.log2(high_confidence / (1 - high_confidence)))
    for _ in range(rounds):
        weights = model.field_weights(pairs, left, right).astype(np.float64)
        total = weights.sum(axis=1)
        m = model.m.copy()
        for f in range(len(FIELDS)):
            confident = (total - weights[:, f] + model.prior_weight) >= threshold
            m[f] = level_shares(pairs.levels[confident, f], f, model.m[f])
        expected = float(model.probability(total).sum())
        prior = min(max(expected / max(total_pairs, 1.0), 1e-12), 0.5)
        model = replace(model, m=m, prior=prior)
    return model


def estimate_em(
    model: MatchModel,
    pairs: PairComparison,
    total_pairs: float,
    prior_pairs: float,
    iterations: int,
    tolerance: float = 1e-5,
) -> tuple[MatchModel, int]:
    """m and the prior by expectation-maximisation over candidate pairs, u held fixed.

    The pairs are folded into their distinct comparison patterns (levels of every field)
    with counts, so each iteration costs the number of patterns, not of pairs. E-step: each
    pattern's match probability from the current m, u and the share of matches among the
    candidates (lambda). M-step: m of each level is the expected share of matches in it among
    matches with that field present (``missing`` is neither evidence for nor against), with
    ``prior_pairs`` pseudo-pairs distributed as the current (configured) m - the configured
    weights act as a prior, and decide alone when the data is small. The prior over all pairs
    is lambda times the candidates over ``total_pairs``. Returns the model and iterations run.
    """
    levels = pairs.levels.astype(np.int64)
    if not len(levels):
        return model, 0
    n_fields = levels.shape[1]
    base = np.int64(MAX_LEVELS + 1)
    keys = np.zeros(len(levels), dtype=np.int64)
    for f in range(n_fields):
        keys = keys * base + levels[:, f]
    unique_keys, first, counts = np.unique(keys, return_index=True, return_counts=True)
    patterns = levels[first]  # patterns x fields
    counts = counts.astype(np.float64)
    prior_m = model.m.copy()
    u = model.u
    m = model.m.copy()
    n_candidates = float(counts.sum())
    lam = min(max(model.prior * total_pairs / n_candidates, 1e-4), 0.5)
    cols = np.arange(n_fields)
    one_hot = [
        (patterns[:, f][:, None] == np.arange(MAX_LEVELS)[None, :]).astype(np.float64)
        for f in range(n_fields)
    ]
    done = 0
    for step in range(1, iterations + 1):
        done = step
        w = np.log2(m / u)
        w[:, 0] = 0.0
        total = w[cols[None, :], patterns].sum(axis=1)
        log_odds = total + np.log2(lam / (1 - lam))
        posterior = 1.0 / (1.0 + np.exp2(-np.clip(log_odds, -60, 60)))
        expected = posterior * counts
        new_m = m.copy()
        for f in range(n_fields):
            per_level = expected @ one_hot[f]
            per_level[0] = 0.0
            n_levels = len(COMPARISONS[FIELDS[f]])
            pseudo = prior_pairs * prior_m[f, :n_levels]
            pseudo[0] = 0.0
            mass = per_level[:n_levels] + pseudo
            if mass.sum() > 0:
                new_m[f, 1:n_levels] = np.maximum(mass[1:] / mass[1:].sum(), 1e-6)
        new_lam = min(max(float(expected.sum() / n_candidates), 1e-6), 0.999)
        change = float(np.abs(new_m - m).max())
        m, lam = new_m, new_lam
        if change < tolerance:
            break
    prior = min(max(lam * n_candidates / max(total_pairs, 1.0), 1e-12), 0.5)
    return replace(model, m=m, prior=prior), done
