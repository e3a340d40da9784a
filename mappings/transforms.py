"""The mapping transforms (``transform:`` in a rule), shared by the reference and the compiled form.

:func:`compile_transform` turns a rule's transform spec (a name, or a one-key mapping with its
argument) into a function; :data:`TEXT_FUNCTIONS` and :data:`TEXT_FORMS` give the compiled form
(:mod:`mappings.compiled`) the text-only functions it calls directly on a str value.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from hub.errors import MappingError, QuarantineError

Transform = Callable[[Any], Any]
"""A transform: a value in, the transformed value out (or a QuarantineError)."""

_TRUE = {"Y", "YES", "T", "TRUE", "1"}
_FALSE = {"N", "NO", "F", "FALSE", "0"}


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

    TEXT_FORMS[apply] = parse
    return apply


_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%f", "%p", "%X", "%c")
TEXT_FORMS: weakref.WeakKeyDictionary[Transform, Callable[[str], Any]] = weakref.WeakKeyDictionary()
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
TEXT_FUNCTIONS: dict[str, Callable[[str], str]] = {"title": _title, "digits_only": _digits_only}

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


def transform_spec(spec: Any) -> tuple[str, Any]:
    """A valid transform's name and argument (None for a plain name)."""
    if isinstance(spec, str):
        return spec, None
    name, arg = next(iter(spec.items()))
    return str(name), arg


def compile_transform(spec: Any, where: Callable[[str], MappingError]) -> Transform:
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
