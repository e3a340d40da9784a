"""Survivorship: which source's value a golden record keeps when sources disagree.

Rules are data (``config/survivorship.toml``): for each entity type an order of
trust over sources, optionally per field, and fields whose values are unioned
across sources (identifiers). A field is taken from the most trusted source that
has a value; sources not named rank after the named ones, most recent first.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import Field, ValidationError

from hub.errors import ConfigError
from hub.model import ENTITIES
from hub.settings import Strict


class _RulesFile(Strict):
    """One table of the rules file: ``[default]`` or an entity type's."""

    order: list[str] = Field(default_factory=list)
    fields: dict[str, list[str]] = Field(default_factory=dict)
    union: list[str] = Field(default_factory=lambda: ["identifiers"])


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one source record says about an entity, and when it last said it."""

    source: str
    last_seen: datetime
    document: dict[str, Any]


@dataclass
class EntityRules:
    """Survivorship for one entity type."""

    order: list[str] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)
    union: set[str] = field(default_factory=lambda: {"identifiers"})


@dataclass
class Survivorship:
    """All survivorship rules, by entity type, with a default for types not named."""

    default: EntityRules = field(default_factory=EntityRules)
    entities: dict[str, EntityRules] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Survivorship:
        """Read the rules file; a missing file means 'most recent source wins'."""
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

        checked: dict[str, _RulesFile] = {}
        problems: list[str] = []
        for name, section in data.items():
            try:
                checked[name] = _RulesFile.model_validate(section)
            except ValidationError as exc:
                problems.extend(f"{'.'.join((name, *(str(p) for p in e['loc'])))}: {e['msg']}" for e in exc.errors())
        if problems:
            raise ConfigError(f"{path}: {'; '.join(problems)}")
        unknown = sorted(set(checked) - {"default", *ENTITIES})
        if unknown:
            raise ConfigError(f"{path}: {', '.join(unknown)}: not an entity type (or 'default')")

        def rules(section: _RulesFile | None) -> EntityRules:
            if section is None:
                return EntityRules()
            return EntityRules(order=list(section.order), fields={k: list(v) for k, v in section.fields.items()},
                               union=set(section.union))

        default = rules(checked.get("default"))
        entities = {k: rules(v) for k, v in checked.items() if k != "default"}
        for r in entities.values():
            r.order = r.order or default.order
            r.union = r.union or default.union
        return cls(default=default, entities=entities)

    def merge(self, entity_type: str, contributions: list[Contribution]) -> dict[str, Any]:
        """The golden document built from every source's contribution."""
        if len(contributions) == 1:
            return dict(contributions[0].document)
        rules = self.entities.get(entity_type, self.default)
        golden: dict[str, Any] = {}
        keys: list[str] = []
        for c in contributions:
            keys.extend(k for k in c.document if k not in keys)
        for key in keys:
            ranked = _rank(contributions, rules.fields.get(key, rules.order))
            if key in rules.union:
                golden[key] = _union(c.document.get(key) for c in ranked)
                continue
            for c in ranked:
                value = c.document.get(key)
                if value not in (None, "", [], {}):
                    golden[key] = value
                    break
        return golden


def _rank(contributions: list[Contribution], order: list[str]) -> list[Contribution]:
    position = {name: i for i, name in enumerate(order)}
    by_recent = sorted(contributions, key=lambda c: c.last_seen, reverse=True)
    return sorted(by_recent, key=lambda c: position.get(c.source, len(position)))


def _union(values: Any) -> list[Any]:
    seen: set[bytes] = set()
    out: list[Any] = []
    for value in values:
        for item in value or []:
            key = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out
