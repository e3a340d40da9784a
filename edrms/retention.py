"""Retention as data: review dates computed from a person's and a case's facts, and legal holds that stack.

:class:`Schedule` is ``config/retention.toml`` validated (every rule's class, trigger and period; the holds
with their scopes). :meth:`Schedule.compute` takes a document's record class, creation date and case, and
the facts of its person (birth, death, episodes), and gives a :class:`Retention`: the review date, the
rule and its reference, the holds in force over it, and the action, which is always ``review`` - the hub
never deletes. The date moves when the facts do (a death, a case closed, an adoption order): callers
recompute whenever a person or case changes.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.errors import ConfigError
from hub.settings import Settings, config_dir

BASE_TRIGGERS = ("birth", "death", "closure")


class Rule(BaseModel):
    """One retention rule: the classes it covers, what it counts from, how long."""

    model_config = ConfigDict(extra="forbid")

    classes: list[str] = Field(min_length=1)
    trigger: list[str]
    years: int = Field(ge=0, le=200)
    died_before_age: int | None = Field(default=None, ge=0, le=130)
    death_years: int | None = Field(default=None, ge=0, le=200)
    reference: str | None = None
    enabled: bool = True

    @field_validator("trigger", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Hold(BaseModel):
    """A legal hold: its scope (classes, creation dates) and when it applies."""

    model_config = ConfigDict(extra="forbid")

    name: str
    classes: list[str] = Field(default_factory=list, description="Empty: every class.")
    created_from: date | None = None
    created_to: date | None = None
    start: date
    end: date | None = None

    def covers(self, record_class: str | None, created: date | None, on: date) -> bool:
        """True when the hold is in force on ``on`` and the document is in its scope."""
        if on < self.start or (self.end is not None and on > self.end):
            return False
        if self.classes and record_class not in self.classes:
            return False
        if self.created_from is not None and (created is None or created < self.created_from):
            return False
        return not (self.created_to is not None and (created is None or created > self.created_to))


class ClassSources(BaseModel):
    """How a record class is found from a case when the document names none."""

    model_config = ConfigDict(extra="forbid")

    episode_kinds: dict[str, str] = Field(default_factory=dict)
    service_areas: dict[str, str] = Field(default_factory=dict)


class ScheduleFile(BaseModel):
    """``retention.toml`` as read."""

    model_config = ConfigDict(extra="forbid")

    classes: ClassSources = Field(default_factory=ClassSources)
    events: dict[str, list[str]] = Field(default_factory=dict)
    rules: dict[str, Rule]
    extend: dict[str, Rule] = Field(default_factory=dict)
    holds: list[Hold] = Field(default_factory=list)


@dataclass(frozen=True)
class EpisodeFacts:
    """What retention needs of a case."""

    id: str
    kind: str
    service_area: str | None
    start: date | None
    end: date | None


@dataclass
class PersonFacts:
    """What retention needs of a person: birth, death and their cases."""

    birth_date: date | None = None
    death_date: date | None = None
    episodes: list[EpisodeFacts] = field(default_factory=list)


@dataclass(frozen=True)
class Retention:
    """A document's retention: review date (None while it cannot yet be known), why, and the holds over it."""

    record_class: str | None
    review_date: date | None
    rule: str | None
    reference: str | None
    trigger: str | None
    holds: tuple[str, ...] = ()
    action: str = "review"

    @property
    def held(self) -> bool:
        """True while any legal hold applies."""
        return bool(self.holds)

    def due(self, on: date) -> bool:
        """True when the review date has come and no hold suspends it."""
        return self.review_date is not None and self.review_date <= on and not self.held


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def _age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


class Schedule:
    """The council's retention rules and legal holds."""

    def __init__(self, data: ScheduleFile) -> None:
        self.data = data
        self.by_class: dict[str, tuple[str, Rule]] = {}
        for name, rule in data.rules.items():
            for cls in rule.classes:
                if cls in self.by_class:
                    raise ConfigError(f"retention: class {cls!r} is in rules {self.by_class[cls][0]!r} and {name!r}")
                self.by_class[cls] = (name, rule)
        known = {*BASE_TRIGGERS, *data.events}
        for name, rule in [*data.rules.items(), *data.extend.items()]:
            unknown = [t for t in rule.trigger if t not in known]
            if unknown:
                raise ConfigError(f"retention: rule {name!r} counts from {unknown[0]!r}, which is neither "
                                  f"birth, death, closure nor an event of [events]")

    @classmethod
    def load(cls, path: Path) -> Schedule:
        """Read and validate a retention file; every problem at once, as a ConfigError."""
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"retention file {path}: {exc}") from exc
        try:
            return cls(ScheduleFile.model_validate(raw))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"retention file {path}: {problems}") from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        """The schedule named by ``[edrms] retention_file`` (under the config folder unless a path)."""
        name = Path(settings.edrms.retention_file)
        return cls.load(name if name.is_absolute() else config_dir() / name)

    def record_class(self, stated: str | None, episode: EpisodeFacts | None) -> str | None:
        """The document's class: as its properties state it, else from its case."""
        if stated:
            return stated
        if episode is None:
            return None
        sources = self.data.classes
        return sources.episode_kinds.get(episode.kind) or sources.service_areas.get(episode.service_area or "")

    def _trigger_date(self, trigger: str, person: PersonFacts, episode: EpisodeFacts | None) -> date | None:
        if trigger == "birth":
            return person.birth_date
        if trigger == "death":
            return person.death_date
        if trigger == "closure":
            if episode is not None:
                return episode.end
            ended = [e.end for e in person.episodes if e.end is not None]
            still_open = any(e.end is None for e in person.episodes)
            return max(ended) if ended and not still_open else None
        kinds = self.data.events.get(trigger, [])
        ends = [e.end for e in person.episodes if e.kind in kinds and e.end is not None]
        return max(ends) if ends else None

    def _rule_date(self, rule: Rule, person: PersonFacts, episode: EpisodeFacts | None) -> tuple[date | None, str]:
        if (rule.died_before_age is not None and rule.death_years is not None and person.death_date
                and person.birth_date and _age_on(person.birth_date, person.death_date) < rule.died_before_age):
            return _add_years(person.death_date, rule.death_years), f"death before {rule.died_before_age}"
        found = [(d, t) for t in rule.trigger if (d := self._trigger_date(t, person, episode)) is not None]
        if not found:
            return None, " or ".join(rule.trigger)
        day, trigger = min(found)
        return _add_years(day, rule.years), trigger

    def compute(self, *, stated_class: str | None, created: date | None, person: PersonFacts,
                episode: EpisodeFacts | None, on: date) -> Retention:
        """The document's retention on ``on`` (holds are judged on that day). Without a stated class or a
        case, the class comes from the person's latest case."""
        latest = max(person.episodes, key=lambda e: e.start or date.min) if person.episodes else None
        record_class = self.record_class(stated_class, episode or latest)
        holds = tuple(h.name for h in self.data.holds if h.covers(record_class, created, on))
        chosen = self.by_class.get(record_class or "")
        if chosen is None:
            return Retention(record_class, None, None, None, None, holds)
        name, rule = chosen
        review, trigger = self._rule_date(rule, person, episode)
        for ext_name, ext in self.data.extend.items():
            if ext.enabled and record_class in ext.classes:
                longer, ext_trigger = self._rule_date(ext, person, episode)
                if review is not None and longer is not None and longer > review:
                    review, name, trigger = longer, f"{name}+{ext_name}", ext_trigger
        return Retention(record_class, review, name, rule.reference, trigger, holds)
