"""Declarative source -> canonical mappings, loaded from YAML and applied row by row.

A mapping file names a source and its streams; each stream says which table it
reads, its key and cursor columns, and a rule for each canonical field (see
docs/mappings.md). Loading validates the whole file and reports the file, line
and field of the first problem; applying a stream to one source row yields a
:class:`hub.contract.MappedRecord` or raises :class:`hub.errors.QuarantineError`
with a stable reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from hub.contract import MappedRecord
from hub.errors import MappingError, QuarantineError
from hub.model import ENTITIES
from mappings.compiled import compile_stream
from mappings.documents import present
from mappings.transforms import Transform, compile_transform, transform_spec

MAPPINGS_DIR = Path(__file__).resolve().parent

_PATH_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$")
_RULE_KEYS = {
    "from", "value", "transform", "null_if", "map", "on_unmapped", "default", "required",
    "ref", "each", "fields", "join",
}
# Every key a file, a stream, a join and a collection may have: a misspelt one (`wher:`) is refused, not ignored.
_FILE_KEYS = {"source", "description", "streams"}
_STREAM_KEYS = {"entity", "table", "key", "cursor", "where", "joins", "collections", "fields"}
_JOIN_KEYS = {"table", "alias", "on", "True"}  # YAML 1.1 reads a bare `on:` as true
_COLLECTION_KEYS = {"table", "foreign_key", "order_by"}


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return _LinedDict({str(k): v for k, v in mapping.items()}, lines)


class _LinedDict(dict[str, Any]):
    """A dict that knows the YAML line of each key."""

    def __init__(self, data: Mapping[str, Any], lines: dict[str, int]) -> None:
        super().__init__(data)
        self.lines = lines


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line(node: Any, key: str) -> int | None:
    return node.lines.get(key) if isinstance(node, _LinedDict) else None


# --- transforms -----------------------------------------------------------------------------

# --- rules ----------------------------------------------------------------------------------

_MISSING = object()  # a rule's constant when it has none (None is a constant)


@dataclass
class FieldRule:
    """How one canonical field is filled from a source row."""

    target: str
    path: list[tuple[str, int | None]]
    columns: list[str] = field(default_factory=list)
    join: str | None = None
    constant: Any = _MISSING
    transforms: list[Transform] = field(default_factory=list)
    transform_specs: list[tuple[str, Any]] = field(default_factory=list)  # (name, argument) of each transform
    null_if: set[str] = field(default_factory=set)
    value_map: dict[str, Any] | None = None
    on_unmapped: str = "quarantine"
    default: Any = None
    required: bool = False
    ref: str | None = None
    each: str | None = None
    nested: list[FieldRule] = field(default_factory=list)
    line: int | None = None  # where the mapping file states the rule

    @property
    def is_constant(self) -> bool:
        """Whether the rule gives a constant (``value:``) rather than reading columns."""
        return self.constant is not _MISSING

    def read(self, row: Mapping[str, Any]) -> Any:
        """The rule's value for ``row``, or None when the source has nothing."""
        if self.constant is not _MISSING:
            return self.constant
        if self.join is not None:
            parts = [str(row[c]).strip() for c in self.columns if present(row.get(c))]
            value: Any = self.join.join(p for p in parts if p) or None
        else:
            value = row.get(self.columns[0])
        if value is None:
            return self.missing()
        if type(value) is str:
            text = value.strip()
            if not text or text in self.null_if:
                return self.missing()
        for transform in self.transforms:
            value = transform(value)
            if value is None or value == "" or value == []:
                return self.missing()
        if self.value_map is not None:
            key = str(value)
            if key in self.value_map:
                value = self.value_map[key]
            elif self.on_unmapped == "quarantine":
                raise QuarantineError(
                    "CODE_UNMAPPED", f"code {key!r} in {self.columns[0]} has no mapping",
                    field=self.target,
                )
            elif self.on_unmapped == "default":
                value = self.default
        return value

    def missing(self) -> Any:
        """The rule's value when the source has none: its default, or MISSING_FIELD when required."""
        if self.required:
            raise QuarantineError(
                "MISSING_FIELD", f"{self.target} is required but {self.columns[0]} is empty",
                field=self.target,
            )
        return self.default


def _parse_path(target: str) -> list[tuple[str, int | None]]:
    parts = []
    for piece in target.split("."):
        m = _PATH_PART.match(piece)
        if not m:
            raise ValueError(piece)
        parts.append((m.group(1), int(m.group(2)) if m.group(2) is not None else None))
    return parts


# --- streams and files ----------------------------------------------------------------------


@dataclass
class Join:
    """A many-to-one lookup: ``alias.COLUMN`` values come from ``table`` where ``on`` matches."""

    table: str
    alias: str
    on: dict[str, str]


@dataclass
class Collection:
    """One-to-many child rows attached to each record as a list under ``name``."""

    name: str
    table: str
    foreign_key: str
    order_by: list[str] = field(default_factory=list)


@dataclass
class StreamMapping:
    """How one stream of a source is read and mapped onto one canonical entity type."""

    name: str
    entity: str
    table: str
    key: str
    cursor: str | None
    where: str | None
    joins: list[Join]
    collections: list[Collection]
    rules: list[FieldRule]
    _applier: Callable[[Mapping[str, Any]], MappedRecord] | None = field(default=None, init=False, repr=False,
                                                                           compare=False)

    def apply(self, row: Mapping[str, Any]) -> MappedRecord:
        """Map one source row (with its join columns and collections) to a canonical record."""
        applier = self._applier
        if applier is None:
            applier = self._applier = compile_stream(self)
        return applier(row)

    def __post_init__(self) -> None:
        # top-level fields built as lists (by index or from a collection)
        self.list_fields = {
            r.path[0][0] for r in self.rules if r.each is not None or any(i is not None for _, i in r.path)
        }


@dataclass
class SourceMapping:
    """A whole mapping file: the source's name and its streams in read order."""

    source: str
    description: str
    streams: dict[str, StreamMapping]
    file: str


def load_mapping(path: str | Path) -> SourceMapping:
    """Load and validate a mapping file; a problem raises MappingError naming file, line, field."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = MAPPINGS_DIR / path
    fname = str(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506
    except FileNotFoundError as exc:
        raise MappingError("mapping file not found", file=fname) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MappingError(f"not valid YAML: {exc}", file=fname,
                           line=mark.line + 1 if mark else None) from exc
    if not isinstance(raw, dict) or "source" not in raw or "streams" not in raw:
        raise MappingError("a mapping needs 'source' and 'streams'", file=fname, line=1)
    _refuse_unknown(raw, _FILE_KEYS, "the file", fname)
    if not isinstance(raw["streams"], dict):
        raise MappingError("'streams' must be a mapping of stream names", file=fname, line=_line(raw, "streams"))
    streams: dict[str, StreamMapping] = {}
    for name, spec in raw["streams"].items():
        streams[name] = _stream(name, spec, fname, _line(raw["streams"], name))
    for stream in streams.values():
        for rule in stream.rules:
            if rule.ref is not None and rule.ref not in streams:
                raise MappingError(f"ref to unknown stream {rule.ref!r}", file=fname, field=rule.target)
    return SourceMapping(source=str(raw["source"]), description=str(raw.get("description", "")),
                         streams=streams, file=fname)


def check_codes(mapping: SourceMapping, field_name: str, known: Set[str], what: str) -> None:
    """MappingError (file, line, field) for the first rule filling the top-level field ``field_name`` with a code
    ``known`` does not hold: a ``map`` value or a constant. ``what`` names the reference data in the message.

    A map is where a source's own codes become the hub's (a children's system's ``CP-1`` the hub's team ``CP``);
    a value misspelt there would put a code nothing else uses on every record it maps, silently.
    """
    for stream in mapping.streams.values():
        for rule in stream.rules:
            if len(rule.path) != 1 or rule.path[0][0] != field_name:
                continue
            given = dict(rule.value_map or {})
            if rule.is_constant:
                given[f"value {rule.constant!r}"] = rule.constant
            for source_code, code in given.items():
                if code is not None and str(code) not in known:
                    raise MappingError(
                        f"stream {stream.name!r}: {source_code!r} maps to {code!r}, which is not a {what} "
                        f"(known: {', '.join(sorted(known))})", file=mapping.file, line=rule.line, field=rule.target)


def _refuse_unknown(spec: Any, known: set[str], where: str, fname: str) -> None:
    """MappingError naming the first key of ``spec`` that is not one of ``known`` (a typo never passes)."""
    for key in spec:
        if str(key) not in known:
            raise MappingError(f"{where}: unknown key {str(key)!r} (known: {', '.join(sorted(known - {'True'}))})",
                               file=fname, line=_line(spec, str(key)), field=str(key))


def _stream(name: str, spec: Any, fname: str, line: int | None) -> StreamMapping:
    def err(msg: str, key: str | None = None, fld: str | None = None) -> MappingError:
        return MappingError(f"stream {name!r}: {msg}", file=fname,
                            line=_line(spec, key) if key else line, field=fld)

    if not isinstance(spec, dict):
        raise err("must be a mapping")
    _refuse_unknown(spec, _STREAM_KEYS, f"stream {name!r}", fname)
    for key in ("entity", "table", "key", "fields"):
        if key not in spec:
            raise err(f"missing {key!r}")
    entity = spec["entity"]
    if entity not in ENTITIES:
        raise err(f"unknown entity {entity!r} (known: {', '.join(sorted(ENTITIES))})", "entity")
    for j in spec.get("joins") or []:
        _refuse_unknown(j, _JOIN_KEYS, f"stream {name!r} join", fname)
    for c in (spec.get("collections") or {}).values():
        _refuse_unknown(c, _COLLECTION_KEYS, f"stream {name!r} collection", fname)
    # YAML 1.1 reads a bare `on:` key as the boolean true; accept it as the `on` it was meant to be
    joins = [Join(table=j["table"], alias=j["alias"], on=dict(j.get("on", j.get("True", j.get(True, {})))))  # type: ignore[call-overload]
             for j in spec.get("joins", [])]
    collections = [
        Collection(name=n, table=c["table"], foreign_key=c["foreign_key"], order_by=list(c.get("order_by", [])))
        for n, c in (spec.get("collections") or {}).items()
    ]
    fields_spec = spec["fields"]
    model = ENTITIES[entity]
    rules = []
    for target, rule_spec in fields_spec.items():
        target_line = _line(fields_spec, target)
        rule = _rule(target, rule_spec, fname, target_line, {c.name for c in collections})
        _check_target(model, rule, f"stream {name!r}: {entity}", fname)
        rules.append(rule)
    return StreamMapping(name=name, entity=entity, table=spec["table"], key=spec["key"],
                         cursor=spec.get("cursor"), where=spec.get("where"), joins=joins,
                         collections=collections, rules=rules)


def _check_target(model: type[BaseModel], rule: FieldRule, where: str, fname: str) -> None:
    """MappingError unless ``rule``'s path names fields the canonical model has, all the way down (and the
    fields of an ``each`` rule exist on the model of the list's items)."""
    node: type[BaseModel] | None = model
    described = where
    for depth, (name, index) in enumerate(rule.path):
        if node is None or name not in node.model_fields:
            known = ", ".join(sorted(node.model_fields)) if node is not None else "nothing"
            raise MappingError(f"{described} has no field {name!r} (it has: {known})", file=fname, line=rule.line,
                               field=rule.target)
        kind, is_list = _field_kind(node.model_fields[name].annotation)
        if index is not None and not is_list:
            raise MappingError(f"{described}.{name} is not a list: it takes no index", file=fname, line=rule.line,
                               field=rule.target)
        last = depth == len(rule.path) - 1
        if not last or rule.each is not None:
            if is_list and index is None and not (last and rule.each is not None):
                raise MappingError(f"{described}.{name} is a list: name an element ({name}[0])", file=fname,
                                   line=rule.line, field=rule.target)
            node = kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None
            if node is None:
                raise MappingError(f"{described}.{name} has no fields of its own", file=fname, line=rule.line,
                                   field=rule.target)
        described = f"{described}.{name}"
    if rule.each is not None:
        assert node is not None
        for nested in rule.nested:
            _check_target(node, nested, described, fname)


def _field_kind(annotation: Any) -> tuple[Any, bool]:
    """The type a field holds (without None), and whether it is a list of it."""
    kind = annotation
    args = [a for a in get_args(kind) if a is not type(None)] if get_origin(kind) in (Union, UnionType) else None
    if args:
        kind = args[0]
    if get_origin(kind) is list:
        return (get_args(kind) or (Any,))[0], True
    return kind, False


def _rule(target: str, spec: Any, fname: str, line: int | None, collections: set[str]) -> FieldRule:
    def err(msg: str) -> MappingError:
        return MappingError(msg, file=fname, line=line, field=target)

    try:
        path = _parse_path(target)
    except ValueError as exc:
        raise err(f"bad target path part {exc}") from exc
    if isinstance(spec, str):
        spec = {"from": spec}
    if not isinstance(spec, dict):
        raise err("a rule is a column name or a mapping")
    unknown = set(spec) - _RULE_KEYS
    if unknown:
        raise err(f"unknown rule keys {sorted(unknown)}")
    rule = FieldRule(target=target, path=path, line=line)
    if "each" in spec:
        if spec["each"] not in collections:
            raise err(f"each names unknown collection {spec['each']!r}")
        rule.each = spec["each"]
        nested = spec.get("fields") or {}
        rule.nested = [_rule(t, s, fname, _line(nested, t) or line, collections) for t, s in nested.items()]
        return rule
    if "value" in spec:
        rule.constant = spec["value"]
    elif "from" in spec:
        src = spec["from"]
        rule.columns = [src] if isinstance(src, str) else [str(c) for c in src]
        if len(rule.columns) > 1 or "join" in spec:
            rule.join = str(spec.get("join", " "))
    else:
        raise err("a rule needs 'from', 'value' or 'each'")
    rule.transforms = [compile_transform(t, err) for t in spec.get("transform", [])]
    rule.transform_specs = [transform_spec(t) for t in spec.get("transform", [])]
    rule.null_if = {str(v) for v in spec.get("null_if", [])}
    if "map" in spec:
        rule.value_map = {str(k): v for k, v in spec["map"].items()}
    rule.on_unmapped = spec.get("on_unmapped", "quarantine")
    if rule.on_unmapped not in ("quarantine", "keep", "default"):
        raise err("on_unmapped is quarantine, keep or default")
    rule.default = spec.get("default")
    rule.required = bool(spec.get("required", False))
    rule.ref = spec.get("ref")
    return rule
