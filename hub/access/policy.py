"""The role policy, read from ``config/policy.toml``: what each role may read, write and state as purpose.

The policy is data. This module only checks it is coherent (every section names
known entity types, every role names known sections and purposes) and answers
questions about it; the rules for consent, seals and relationships that sit on
top of it live in :mod:`hub.access.rules`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.errors import ConfigError
from hub.model import ENTITIES
from hub.settings import Settings

# Not canonical entities, but protected like them: the audit trail.
EXTRA_TYPES = frozenset({"AuditEvent"})
ROLES = ("social_worker", "clinician", "finance_officer", "records_manager", "transitions_worker", "auditor", "admin")


class RolePolicy(BaseModel):
    """What one role may do."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    read: list[str] = Field(default_factory=list, description="Sections the role may read.")
    write: list[str] = Field(default_factory=list, description="Sections the role may change.")
    purposes: list[str] = Field(min_length=1, description="Purposes the role may state; the first is the default.")
    consent_scope: str | None = Field(default=None, description="Consent scope that limits this role to demographics.")
    requires_relationship: bool = Field(default=False, description="Only people with an Episode of the caller's team.")
    break_glass: bool = Field(default=False, description="Whether the role may break glass.")
    cohort: Literal["transitions"] | None = Field(
        default=None, description="'transitions': only young people in the transitions cohort (docs/transitions.md).")


class Team(BaseModel):
    """One team of the council: reference data (config/teams.toml)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32, description="What tokens, episodes and seals carry.")
    name: str = Field(min_length=1, description="The team's name, as people read it.")
    service_area: str | None = None
    names: list[str] = Field(default_factory=list, description="Other spellings a source system uses.")


class TeamsFile(BaseModel):
    """The teams file: every team once, no name shared by two teams."""

    model_config = ConfigDict(extra="forbid")

    teams: list[Team]

    @model_validator(mode="after")
    def _distinct(self) -> TeamsFile:
        seen: dict[str, str] = {}
        problems = []
        for team in self.teams:
            for label in {team.code.casefold(), team.name.casefold(), *(n.casefold() for n in team.names)}:
                other = seen.setdefault(label, team.code)
                if other != team.code:
                    problems.append(f"{label!r} names both {other} and {team.code}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class PolicyFile(BaseModel):
    """The whole policy file, validated for coherence."""

    model_config = ConfigDict(extra="forbid")

    sections: dict[str, list[str]]
    purposes: dict[str, str]
    roles: dict[str, RolePolicy]

    @model_validator(mode="after")
    def _coherent(self) -> PolicyFile:
        known = set(ENTITIES) | EXTRA_TYPES
        problems = [f"section {name!r} names unknown type {t!r}"
                    for name, types in self.sections.items() for t in types if t not in known]
        for role, rule in self.roles.items():
            problems += [f"role {role!r} names unknown section {s!r}"
                         for s in [*rule.read, *rule.write] if s not in self.sections]
            problems += [f"role {role!r} names unknown purpose {p!r}" for p in rule.purposes if p not in self.purposes]
        problems += [f"role {r!r} is missing" for r in ROLES if r not in self.roles]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _problems(exc: ValidationError) -> str:
    """Every problem of a file, each with the key it is at (``roles.clinician.read``: ...)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}" if e["loc"]
        else e["msg"].removeprefix("Value error, ") for e in exc.errors())


def load_teams(path: Path) -> tuple[Team, ...]:
    """Read and check the teams file; raise ConfigError naming every problem."""
    try:
        return tuple(TeamsFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8"))).teams)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the teams: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: teams are invalid: {_problems(exc)}") from exc


@dataclass(frozen=True, slots=True)
class Policy:
    """The loaded policy, with the lookups the access rules make (each role's types worked out once)."""

    file: PolicyFile
    teams: tuple[Team, ...] = ()
    _readable: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    _writable: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    _codes: dict[str, str] = field(init=False, repr=False, compare=False)
    _names: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sections = self.file.sections
        object.__setattr__(self, "_readable", {role: frozenset(t for s in rule.read for t in sections[s])
                                               for role, rule in self.file.roles.items()})
        object.__setattr__(self, "_writable", {role: frozenset(t for s in rule.write for t in sections[s])
                                               for role, rule in self.file.roles.items()})
        object.__setattr__(self, "_codes", {label.casefold(): team.code for team in self.teams
                                            for label in (team.code, team.name, *team.names)})
        object.__setattr__(self, "_names", {team.code: team.name for team in self.teams})

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        """The hub's policy and teams: the files ``auth.policy_file`` and ``auth.teams_file`` name."""
        auth = settings.auth
        return cls.load(settings.config_path(auth.policy_file),
                        settings.config_path(auth.teams_file) if auth.teams_file else None)

    @classmethod
    def load(cls, path: Path, teams_path: Path | None = None) -> Policy:
        """Read and check the policy file, and the teams file when given; raise ConfigError naming every problem."""
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the policy: {exc}") from exc
        try:
            file = PolicyFile.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"{path}: policy is invalid: {_problems(exc)}") from exc
        return cls(file, load_teams(teams_path) if teams_path is not None else ())

    @property
    def roles(self) -> list[str]:
        """Every role the policy knows."""
        return list(self.file.roles)

    def role(self, name: str) -> RolePolicy | None:
        """The rules for one role, or None for a role the policy does not know."""
        return self.file.roles.get(name)

    def section_of(self, entity_type: str) -> str | None:
        """The section an entity type belongs to."""
        for name, types in self.file.sections.items():
            if entity_type in types:
                return name
        return None

    def readable_types(self, role: str) -> frozenset[str]:
        """Entity types the role may read (before consent and seals)."""
        return self._readable.get(role, frozenset())

    def writable_types(self, role: str) -> frozenset[str]:
        """Entity types the role may change."""
        return self._writable.get(role, frozenset())

    def team_code(self, team: str | None) -> str | None:
        """The code of a team named by its code, its name or another spelling the reference data knows (the
        text as it is, trimmed, for a team the reference data does not know)."""
        if team is None:
            return None
        text = team.strip()
        return self._codes.get(text.casefold(), text) or None

    def team_name(self, code: str | None) -> str | None:
        """A team's name, for people to read (the code itself when the reference data does not know it)."""
        return self._names.get(code, code) if code is not None else None

    def team_label(self, team: str | None) -> str:
        """A team as a page shows it: its name with its code ("Child Protection (CP)"), for a team named by its
        code, name or another spelling; the text as it is for a team the reference data does not know; "" for
        none."""
        code = self.team_code(team)
        if code is None:
            return ""
        name = self.team_name(code)
        return code if name in (None, code) else f"{name} ({code})"

    def purpose_code(self, purpose: str) -> str:
        """The HL7 v3 ActReason code of a purpose (for AuditEvent.purposeOfEvent)."""
        return self.file.purposes.get(purpose, "HOPERAT")
