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
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from hub.contract import MappedRecord
from hub.errors import MappingError, QuarantineError
from hub.model import ENTITIES
from mappings.compiled import compile_stream

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
_TRUE = {"Y", "YES", "T", "TRUE", "1"}
_FALSE = {"N", "NO", "F", "FALSE", "0"}


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

Transform = Callable[[Any], Any]


def _day_month_year(text: str) -> datetime:
    day, month, year = text.split("/")
    if len(year) != 4:
        raise ValueError(text)
    return datetime(int(year), int(month), int(day))


def _iso_date(text: str) -> datetime:
    if len(text) != 10:
        raise ValueError(text)
    return datetime.fromisoformat(text)


def _iso_datetime(fmt: str) -> Callable[[str], datetime]:
    """``%Y-%m-%d %H:%M:%S`` (or with ``T``) read directly when the text has exactly that shape;
    text strptime could not match is refused at once and any other goes to strptime, so what
    is accepted and what it means do not change."""
    sep = fmt[8]
    with_t = sep == "T"

    def parse(text: str) -> datetime:
        if (len(text) == 19 and text.isascii() and text[4] == "-" and text[7] == "-" and text[10] == sep
                and text[13] == ":" and text[16] == ":"
                and (text[:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:]).isdigit()):
            return datetime(int(text[:4]), int(text[5:7]), int(text[8:10]),
                            int(text[11:13]), int(text[14:16]), int(text[17:]))
        if ":" not in text or (("T" in text or "t" in text) != with_t):  # strptime could never match
            raise ValueError(text)
        return datetime.strptime(text, fmt)

    return parse


# strptime is slow (and a miss raises after a full regex match); the formats legacy systems use most
# are parsed directly, just as strictly.
_FAST_DATES: dict[str, Callable[[str], datetime]] = {
    "%d/%m/%Y": _day_month_year, "%Y-%m-%d": _iso_date,
    "%Y-%m-%d %H:%M:%S": _iso_datetime("%Y-%m-%d %H:%M:%S"), "%Y-%m-%dT%H:%M:%S": _iso_datetime("%Y-%m-%dT%H:%M:%S"),
}


def _parse_dates(formats: list[str], as_datetime: bool) -> Transform:
    parsers = [(_FAST_DATES.get(fmt), fmt) for fmt in formats]

    def parse(text: str) -> date:
        text = text.strip()
        for fast, fmt in parsers:
            try:
                parsed = fast(text) if fast is not None else datetime.strptime(text, fmt)
            except ValueError:
                continue
            return parsed if as_datetime else parsed.date()
        raise QuarantineError("DATE_INVALID", f"{text!r} is not a date in {', '.join(formats)}")

    if not any(directive in fmt for fmt in formats for directive in _TIME_DIRECTIVES):
        # Days repeat across a source (of birth, of starting): each distinct text is read once. An
        # unreadable one raises every time (an exception is not cached). Times of day hardly repeat.
        parse = lru_cache(maxsize=1 << 13)(parse)

    def apply(value: Any) -> Any:
        if isinstance(value, datetime):
            return value if as_datetime else value.date()
        if isinstance(value, date):
            return value
        return parse(str(value))

    _TEXT_FORMS[apply] = parse
    return apply


_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%f", "%p", "%X", "%c")
_TEXT_FORMS: weakref.WeakKeyDictionary[Transform, Callable[[str], Any]] = weakref.WeakKeyDictionary()
"""A transform's own function for a str value, where it has a quicker one (a compiled mapping calls it)."""


def _to_decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value).strip().replace(",", "").lstrip("£"))
    except InvalidOperation as exc:
        raise QuarantineError("NUMBER_INVALID", f"{value!r} is not a number") from exc


def _to_int(value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise QuarantineError("NUMBER_INVALID", f"{value!r} is not a whole number") from exc


def _to_bool(value: Any) -> bool:
    text = str(value).strip().upper()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise QuarantineError("BOOLEAN_INVALID", f"{value!r} is not yes or no")


def _split_name(part: str) -> Transform:
    def apply(value: Any) -> Any:
        text = " ".join(str(value).split())
        if "," in text:
            family, _, given = text.partition(",")
        else:
            given, _, family = text.rpartition(" ")
        family, given = family.strip(), given.strip()
        return family if part == "family" else given.split()

    return apply


def _split(sep: str | None) -> Transform:
    def apply(value: Any) -> Any:
        return [p.strip() for p in str(value).split(sep) if p.strip()]

    return apply


def _each_str(fn: Callable[[str], str]) -> Transform:
    def apply(value: Any) -> Any:
        if type(value) is str:
            return fn(value)
        if isinstance(value, list):
            return [fn(str(v)) for v in value]
        return fn(str(value))

    return apply


_NAME_PART = re.compile(r"[^\s'\-]+")


def _title_part(match: re.Match[str]) -> str:
    """Title case that knows British names: O'Brien, Smith-Jones, McDonald."""
    part = match.group(0)
    if part.startswith("mc") and len(part) > 2:
        return "Mc" + part[2:].capitalize()
    return part.capitalize()


@lru_cache(maxsize=1 << 16)
def _title(text: str) -> str:
    """Title case of a name or address part (cached: names and streets repeat across a source)."""
    return _NAME_PART.sub(_title_part, text.lower())


_NOT_DIGIT = re.compile(r"\D")


def _digits_only(text: str) -> str:
    return _NOT_DIGIT.sub("", text)


# The text-to-text functions of transforms, for a mapping compiled to code (mappings.compiled).
_TEXT_FUNCTIONS: dict[str, Callable[[str], str]] = {"title": _title, "digits_only": _digits_only}

_SIMPLE: dict[str, Transform] = {
    "trim": _each_str(str.strip),
    "upper": _each_str(str.upper),
    "lower": _each_str(str.lower),
    "title": _each_str(_title),
    "string": _each_str(str),
    "digits_only": _each_str(_digits_only),
    "collapse_spaces": _each_str(lambda s: " ".join(s.split())),
    "split": _split(None),
    "decimal": _to_decimal,
    "pence_to_pounds": lambda v: (_to_decimal(v) / 100).quantize(Decimal("0.01")),
    "int": _to_int,
    "bool": _to_bool,
}


def _formats(arg: Any) -> list[str]:
    return [arg] if isinstance(arg, str) else list(arg)


def _regex(pattern: str) -> Transform:
    compiled = re.compile(pattern)

    def apply(value: Any) -> Any:
        found = compiled.search(str(value))
        if found is None:
            return None
        return found.group(1) if compiled.groups else found.group(0)

    return apply


_PARAMETRIC: dict[str, Callable[[Any], Transform]] = {
    "date": lambda arg: _parse_dates(_formats(arg), as_datetime=False),
    "datetime": lambda arg: _parse_dates(_formats(arg), as_datetime=True),
    "split": lambda arg: _split(str(arg)),
    "split_name": lambda arg: _split_name(str(arg)),
    "regex": lambda arg: _regex(str(arg)),
}


def _transform_spec(spec: Any) -> tuple[str, Any]:
    """A valid transform's name and argument (None for a plain name)."""
    if isinstance(spec, str):
        return spec, None
    name, arg = next(iter(spec.items()))
    return str(name), arg


def _compile_transform(spec: Any, where: Callable[[str], MappingError]) -> Transform:
    if isinstance(spec, str):
        if spec not in _SIMPLE:
            raise where(f"unknown transform {spec!r}")
        return _SIMPLE[spec]
    if isinstance(spec, dict) and len(spec) == 1:
        name, arg = next(iter(spec.items()))
        if name not in _PARAMETRIC:
            raise where(f"unknown transform {name!r}")
        if name == "split_name" and arg not in ("given", "family"):
            raise where("split_name takes 'given' or 'family'")
        return _PARAMETRIC[name](arg)
    raise where(f"a transform is a name or a one-key mapping, not {spec!r}")


# --- rules ----------------------------------------------------------------------------------

_MISSING = object()


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

    def read(self, row: Mapping[str, Any]) -> Any:
        """The rule's value for ``row``, or None when the source has nothing."""
        if self.constant is not _MISSING:
            return self.constant
        if self.join is not None:
            parts = [str(row[c]).strip() for c in self.columns if _present(row.get(c))]
            value: Any = self.join.join(p for p in parts if p) or None
        else:
            value = row.get(self.columns[0])
        if value is None:
            return self._missing()
        if type(value) is str:
            text = value.strip()
            if not text or text in self.null_if:
                return self._missing()
        for transform in self.transforms:
            value = transform(value)
            if value is None or value == "" or value == []:
                return self._missing()
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

    def compile(self) -> Callable[[Mapping[str, Any]], Any]:
        """``read`` specialised once for this rule: the same value or error, decided without
        re-examining the rule for every row (a migration applies each rule millions of times)."""
        if self.constant is not _MISSING:
            constant = self.constant
            return lambda row: constant
        missing = self._missing
        transforms = tuple(self.transforms)
        null_if = frozenset(self.null_if)
        value_map, on_unmapped, default = self.value_map, self.on_unmapped, self.default
        column, target, join = (self.columns[0] if self.columns else ""), self.target, self.join
        columns = tuple(self.columns)

        def read(row: Mapping[str, Any]) -> Any:
            if join is not None:
                parts = [str(row[c]).strip() for c in columns if _present(row.get(c))]
                value: Any = join.join(p for p in parts if p) or None
            else:
                value = row.get(column)
            if value is None:
                return missing()
            if type(value) is str:
                text = value.strip()
                if not text or text in null_if:
                    return missing()
            for transform in transforms:
                value = transform(value)
                if value is None or value == "" or value == []:
                    return missing()
            if value_map is not None:
                key = str(value)
                if key in value_map:
                    return value_map[key]
                if on_unmapped == "quarantine":
                    raise QuarantineError("CODE_UNMAPPED", f"code {key!r} in {column} has no mapping", field=target)
                if on_unmapped == "default":
                    return default
            return value

        return read

    def _missing(self) -> Any:
        if self.required:
            raise QuarantineError(
                "MISSING_FIELD", f"{self.target} is required but {self.columns[0]} is empty",
                field=self.target,
            )
        return self.default


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    if isinstance(value, list | dict):
        return len(value) > 0
    return True


def _parse_path(target: str) -> list[tuple[str, int | None]]:
    parts = []
    for piece in target.split("."):
        m = _PATH_PART.match(piece)
        if not m:
            raise ValueError(piece)
        parts.append((m.group(1), int(m.group(2)) if m.group(2) is not None else None))
    return parts


def _assign(doc: dict[str, Any], path: list[tuple[str, int | None]], value: Any) -> None:
    node: Any = doc
    for i, (name, index) in enumerate(path):
        last = i == len(path) - 1
        if index is None:
            if last:
                node[name] = value
            else:
                node = node.setdefault(name, {})
            continue
        items = node.setdefault(name, [])
        while len(items) <= index:
            items.append({} if not last else None)
        if last:
            items[index] = value
        else:
            if items[index] is None:
                items[index] = {}
            node = items[index]


def _prune(value: Any) -> Any:
    """Drop None values, list elements whose values are all empty, and empty containers.

    Exactly ``_present`` of each value, with the common types (text, lists, dicts) decided inline:
    a mapping of a sparse row prunes every list field of every record.
    """
    kind = type(value)
    if kind is dict:
        out = {}
        for k, v in value.items():
            kind = type(v)
            if kind is dict or kind is list:
                v = _prune(v)
                if v:
                    out[k] = v
            elif kind is str:
                if v.strip():
                    out[k] = v
            elif _present(v):
                out[k] = v
        return out
    if kind is list:
        items = []
        for v in value:
            kind = type(v)
            if kind is dict:
                v = _prune(v)
                if _meaningful(v):  # not empty, and more than constants
                    items.append(v)
            elif kind is list:
                v = _prune(v)
                if v:
                    items.append(v)
            elif kind is str:
                if v.strip():
                    items.append(v)
            elif _present(v):
                items.append(v)
        return items
    return value


_CONSTANT_KEYS = frozenset({"use", "system"})


def _meaningful(doc: dict[str, Any]) -> bool:
    """A list element counts only if it holds something besides constants like `use`."""
    return not doc.keys() <= _CONSTANT_KEYS


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
    rule.transforms = [_compile_transform(t, err) for t in spec.get("transform", [])]
    rule.transform_specs = [_transform_spec(t) for t in spec.get("transform", [])]
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
