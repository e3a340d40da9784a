"""Subscriptions and targets as data: ``config/subscriptions.toml`` read into typed settings.

A *target* is a system the hub pushes to, named ``[targets.NAME]`` with the
import path of its adapter and its options, batch size, rate limit, retry
policy, circuit breaker and ordering key. A *subscription* says which change
events (entity type and kind) go to which target. Every problem in the file is
reported at once, as a :class:`~hub.errors.ConfigError`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from hub.errors import ConfigError
from hub.settings import Settings, Strict

WILDCARD = "*"


class RetryPolicy(Strict):
    """How transient failures are retried: exponential backoff with full jitter, then a dead letter."""

    max_attempts: int = Field(default=10, ge=1, description="Attempts before an event becomes a dead letter.")
    base_seconds: float = Field(default=2.0, gt=0, description="Backoff before the second attempt (ceiling).")
    max_seconds: float = Field(default=600.0, gt=0, description="Largest backoff between attempts.")
    jitter: Literal["full", "none"] = Field(
        default="full", description="'full': wait a random time up to the backoff; 'none': the backoff itself.")


class CircuitPolicy(Strict):
    """When a target's circuit opens (stop calling it) and when it is tried again."""

    failure_threshold: int = Field(default=5, ge=1, description="Consecutive failed batches that open the circuit.")
    cooldown_seconds: float = Field(default=30.0, gt=0, description="Open time before one probe batch is allowed.")


class TargetSettings(Strict):
    """One system the hub pushes change events to."""

    adapter: str = Field(description="Import path of the target adapter class, 'package.module:Class'.")
    enabled: bool = True
    options: dict[str, Any] = Field(default_factory=dict, description="Adapter-specific settings.")
    batch_size: int = Field(default=100, ge=1, le=10_000, description="Events per push.")
    rate_limit: float = Field(
        default=0.0, ge=0, description="Events per second each worker sends this target at most (0: no limit).")
    ordering: Literal["person", "entity", "none"] = Field(
        default="person",
        description="Ordering key: 'person' keeps each person's events in order, 'entity' each entity's, "
                    "'none' lets every event go in parallel.",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Longest a push may take.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    circuit: CircuitPolicy = Field(default_factory=CircuitPolicy)


class Subscription(Strict):
    """Which change events go to one target: by entity type and kind ('*' for any)."""

    target: str
    entity_types: list[str] = Field(default_factory=lambda: [WILDCARD])
    kinds: list[str] = Field(default_factory=lambda: [WILDCARD])

    def matches(self, entity_type: str, kind: str) -> bool:
        """True when an event of this entity type and kind is wanted."""
        return (WILDCARD in self.entity_types or entity_type in self.entity_types) and (
            WILDCARD in self.kinds or kind in self.kinds)


class DeliveryConfig(Strict):
    """Every target and subscription of the hub."""

    targets: dict[str, TargetSettings] = Field(default_factory=dict)
    subscriptions: list[Subscription] = Field(default_factory=list)

    @model_validator(mode="after")
    def _subscriptions_name_targets(self) -> DeliveryConfig:
        unknown = sorted({s.target for s in self.subscriptions} - set(self.targets))
        if unknown:
            raise ValueError(f"subscriptions name unknown targets: {', '.join(unknown)}")
        return self

    def enabled_targets(self) -> list[str]:
        """Targets that are switched on, in file order."""
        return [name for name, t in self.targets.items() if t.enabled]

    def targets_for(self, entity_type: str, kind: str) -> list[str]:
        """Enabled targets subscribed to an event of this entity type and kind, each once."""
        wanted: list[str] = []
        for sub in self.subscriptions:
            if sub.target not in wanted and self.targets[sub.target].enabled and sub.matches(entity_type, kind):
                wanted.append(sub.target)
        return wanted


class JobSettings(Strict):
    """One scheduled job: a callable named by import path, run every N seconds or on a cron line."""

    call: str = Field(description="Import path 'package.module:function'; called with a JobContext.")
    enabled: bool = True
    every_seconds: float | None = Field(default=None, gt=0)
    cron: str | None = Field(default=None, description="Five-field crontab line, in UTC.")
    options: dict[str, Any] = Field(default_factory=dict, description="Passed to the job in its context.")

    @model_validator(mode="after")
    def _one_trigger(self) -> JobSettings:
        if (self.every_seconds is None) == (self.cron is None):
            raise ValueError("give exactly one of every_seconds or cron")
        return self


class ScheduleConfig(Strict):
    """The scheduler's jobs."""

    jobs: dict[str, JobSettings] = Field(default_factory=dict)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _problems(path: Path, exc: ValidationError) -> ConfigError:
    listed = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
    return ConfigError(f"{path} is invalid: {listed}")


def load_delivery_config(settings: Settings) -> DeliveryConfig:
    """Read the subscriptions file named by the settings (empty when there is none)."""
    path = settings.config_path(settings.subscriptions_file)
    try:
        return DeliveryConfig.model_validate(_read(path))
    except ValidationError as exc:
        raise _problems(path, exc) from exc


def load_schedule_config(settings: Settings) -> ScheduleConfig:
    """Read the schedules file named by the settings (no jobs when there is none)."""
    path = settings.config_path(settings.schedules_file)
    try:
        return ScheduleConfig.model_validate(_read(path))
    except ValidationError as exc:
        raise _problems(path, exc) from exc
