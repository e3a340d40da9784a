"""The typed settings of identity resolution, read from ``config/identity.toml``.

``load_identity_config()`` reads the file the hub's settings name (``identity_file``)
once and raises :class:`~hub.errors.ConfigError` listing
every problem, so a bad threshold stops the hub at start-up rather than
silently linking the wrong people.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.errors import ConfigError
from hub.identity.blocking import BLOCKING_KEYS
from hub.settings import get_settings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    """Match probabilities that divide link, review and no link."""

    link: float = Field(default=0.95, gt=0, le=1)
    review: float = Field(default=0.4, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.review > self.link:
            raise ValueError("thresholds.review must not be above thresholds.link")
        return self


class Guards(_Strict):
    """Rules that override the score: twins, parent and child, the deceased."""

    parent_child_min_years: int = Field(default=12, ge=1, le=80)
    twin_max_given_edits: int = Field(default=1, ge=0, le=3)
    twin_typo_min_length: int = Field(default=3, ge=1, le=20)
    deceased_needs_review: bool = True
    # The bulk commands: the twins and parent/child guards are on when at least this share of a
    # file's records has a clear housemate (same surname and address, clearly someone else).
    household_min_share: float = Field(default=0.004, ge=0, le=1)
    # ...judged only on files of at least this many records (fewer prove nothing: the guards stay on).
    household_min_records: int = Field(default=1000, ge=0)
    # Without households, a record linked to two records that are not one person keeps the link
    # that beats the other by this many bits (log2 odds); otherwise both go to review.
    ambiguity_margin_bits: float = Field(default=10.0, ge=0)


class Blocking(_Strict):
    """Which keys make candidate pairs, and how much is compared at once."""

    passes: tuple[str, ...] = (
        "nhs_number",
        "birth_date",
        "birth_date_any_order",
        "family_phonetic+birth_year",
        "postcode+given_initial",
        "family_phonetic+birth_month_day",
        "given_phonetic+birth_year",
        "given_phonetic+family_phonetic",
        "postcode+family_phonetic",
        "address_line",
    )
    max_block_pairs: int = Field(default=250_000, ge=1)
    chunk_pairs: int = Field(default=1_000_000, ge=1000)
    max_candidates_per_key: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _known_keys(self) -> Blocking:
        unknown = [p for p in self.passes if p not in BLOCKING_KEYS]
        if unknown:
            raise ValueError(f"unknown blocking keys {unknown}; known: {list(BLOCKING_KEYS)}")
        if not self.passes:
            raise ValueError("blocking.passes is empty: nothing would be compared")
        return self


class Estimation(_Strict):
    """How the bulk commands estimate weights from the data they are given."""

    estimate: bool = True
    # "em": m and the prior by expectation-maximisation over candidate pairs (u from random pairs);
    # "leave_one_out": m from high-confidence pairs leaving the field out (the earlier method);
    # "auto": EM where the data shows no households, else leave-one-out (see docs/identity.md).
    method: Literal["auto", "em", "leave_one_out"] = "auto"
    em_iterations: int = Field(default=40, ge=1, le=500)
    # The configured m count as this many pairs in EM: the data outweighs them once it has many more.
    prior_pairs: float = Field(default=50.0, ge=0)
    # Fewer candidate pairs than this: keep the configured m (too little data to learn from).
    min_training_pairs: int = Field(default=200, ge=0)
    # The pipeline's resolver learns m and u per source from a sync's first batch of at least this
    # many records (and keeps them for that source until its next sync); smaller: the weights below.
    min_source_records: int = Field(default=1000, ge=2)
    random_pairs: int = Field(default=300_000, ge=1000)
    training_records: int = Field(default=25_000, ge=100)
    high_confidence: float = Field(default=0.999, gt=0.5, lt=1)
    rounds: int = Field(default=3, ge=1, le=20)
    term_frequency: bool = True
    expected_known_share: float = Field(default=0.5, gt=0, lt=1)
    population_floor: int = Field(default=1000, ge=1)


class LevelWeights(_Strict):
    """m and u probabilities of one comparison's levels."""

    m: dict[str, float] = Field(default_factory=dict)
    u: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _probabilities(self) -> LevelWeights:
        for side in (self.m, self.u):
            for level, value in side.items():
                if not 0 < value < 1:
                    raise ValueError(f"probability of level {level!r} must be between 0 and 1")
        return self


class IdentityConfig(_Strict):
    """Everything identity resolution reads from config/identity.toml."""

    thresholds: Thresholds = Thresholds()
    guards: Guards = Guards()
    blocking: Blocking = Blocking()
    estimation: Estimation = Estimation()
    weights: dict[str, LevelWeights] = Field(default_factory=dict)


def identity_config_path() -> Path:
    """The identity settings file the hub's settings name (``identity_file``, ``CAREHUB_IDENTITY_FILE``)."""
    settings = get_settings()
    return settings.config_path(settings.identity_file)


def read_identity_config(path: Path) -> IdentityConfig:
    """Parse and check one identity settings file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"identity settings file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        return IdentityConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


@lru_cache(maxsize=1)
def load_identity_config() -> IdentityConfig:
    """The hub's identity settings, read once."""
    return read_identity_config(identity_config_path())
