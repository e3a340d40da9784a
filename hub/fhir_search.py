"""FHIR R4 search parameters: one parser for every resource type the facade serves.

A search is a list of ``name[:modifier]=value[,value...]`` pairs. Each pair is
one :class:`Criterion`; its comma-separated values are alternatives (OR), and
repeating a parameter adds another criterion (AND). Values are read by the
parameter's FHIR type (https://hl7.org/fhir/R4/search.html):

* ``string``: text matched from its start, case- and accent-insensitively;
  ``:contains`` anywhere, ``:exact`` whole (where the parameter offers it);
* ``token``: ``system|code``, ``|code`` (no system), ``system|`` (any code of
  the system) or ``code`` (any system);
* ``date``: ``[prefix]YYYY[-MM[-DD[Thh:mm[:ss][zone]]]]`` with the prefixes
  ``eq ne gt lt ge le sa eb``; a partial date is the range it covers;
* ``reference``: ``[Type/]id`` or the absolute URL of a resource on this
  server; the ``:Type`` modifier names the target type;
* ``number``: ``[prefix]decimal`` with the same prefixes (``sa``/``eb`` excepted).

Each resource type declares its parameters once (:data:`PARAMETERS`, with the
modifiers and prefixes each one really supports); the CapabilityStatement and
the facade's docs are made from the same table, so they claim exactly what
works. A parameter or modifier the table does not offer is refused
(:class:`BadSearch`, 400) unless the client sent ``Prefer: handling=lenient``;
then it is left out, and the ``self`` link shows only what was applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal
from urllib.parse import urlencode

from hub.errors import HubError

ParamType = Literal["string", "token", "date", "reference", "number"]
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
MAX_COUNT = 500
MAX_ALTERNATIVES = 50  # comma-separated values of one parameter: each is a condition in one query
MAX_CRITERIA = 20  # parameters of one search, repeats included


class BadSearch(HubError):
    """A FHIR search the facade cannot answer (an OperationOutcome with code invalid)."""

    code = "CAREHUB-E400"
    http_status = 400


@dataclass(frozen=True, slots=True)
class SearchParameter:
    """One search parameter a resource type offers, with what of its type the facade supports."""

    name: str
    type: ParamType
    documentation: str
    modifiers: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()
    targets: tuple[str, ...] = ()  # reference: the resource types it may point at
    alternatives: bool = True  # False: no comma OR (the store cannot combine them for this parameter)
    repeats: bool = True  # False: at most one occurrence


@dataclass(frozen=True, slots=True)
class StringValue:
    """A string search value."""

    text: str


@dataclass(frozen=True, slots=True)
class TokenValue:
    """A token: ``system`` None means any system, "" means no system; ``code`` None means any code."""

    system: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class DateValue:
    """A date search value: the prefix and the range of instants the given precision covers."""

    prefix: str
    start: datetime
    end: datetime  # exclusive

    def first_day(self) -> date:
        """The first calendar day of the range."""
        return self.start.date()

    def last_day(self) -> date:
        """The last calendar day the range touches."""
        return (self.end - timedelta(microseconds=1)).date()


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    """A reference: the target type (None when not said) and id; ``foreign`` for another server's URL."""

    type: str | None
    id: str
    foreign: bool = False


@dataclass(frozen=True, slots=True)
class NumberValue:
    """A number search value with its prefix."""

    prefix: str
    value: Decimal


Value = StringValue | TokenValue | DateValue | ReferenceValue | NumberValue


@dataclass(frozen=True, slots=True)
class Criterion:
    """One ``name[:modifier]=v1,v2`` pair: any of its values may match (OR)."""

    parameter: SearchParameter
    modifier: str | None
    values: tuple[Value, ...]


@dataclass(slots=True)
class Search:
    """A parsed search: criteria that must all hold (AND), paging, includes, and what was applied."""

    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    count: int = 20
    cursor: str | None = None
    includes: list[str] = field(default_factory=list)
    counted: bool = True  # False: ``_total=none``, no total counted
    applied: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def of(self, name: str) -> list[Criterion]:
        """The criteria of one parameter."""
        return [c for c in self.criteria if c.parameter.name == name]

    @property
    def summary_only(self) -> bool:
        """True when the client asked only for the total (``_count=0`` or ``_summary=count``)."""
        return self.count == 0

    @property
    def wants_total(self) -> bool:
        """True unless the client said ``_total=none`` (a count-only search is always counted)."""
        return self.counted or self.summary_only

    def query_string(self, cursor: str | None = None) -> str:
        """The query as applied (the ``self`` link), with a cursor for a ``next`` link."""
        pairs = [*self.applied, *([("_cursor", cursor)] if cursor else [])]
        return urlencode(pairs)


# -- the parameters each resource type offers ---------------------------------------------------------

_TEXT = frozenset({"contains"})
_ALL_PREFIXES = frozenset(PREFIXES)
_PATIENT_REF = ("Patient",)


def _patient_reference(name: str, documentation: str) -> SearchParameter:
    return SearchParameter(name, "reference", documentation, frozenset({"Patient"}), targets=_PATIENT_REF)


_ID = SearchParameter("_id", "token", "the resource's id (a comma list for several)")
_PATIENT = _patient_reference("patient", "the person (Patient/id, id, or this server's absolute URL)")
_SUBJECT = _patient_reference("subject", "the person, as subject (Patient only)")

PARAMETERS: dict[str, list[SearchParameter]] = {
    "Patient": [
        SearchParameter("identifier", "token", "NHS number (https://fhir.nhs.uk/Id/nhs-number) or a local id under "
                        "the council's identifier base; system|value, |value, system| or a bare value"),
        SearchParameter("name", "string", "each word starts a given or family name", _TEXT),
        SearchParameter("family", "string", "family name", _TEXT),
        SearchParameter("given", "string", "first given name", _TEXT),
        SearchParameter("birthdate", "date", "date of birth; YYYY, YYYY-MM or YYYY-MM-DD with eq, ne, gt, lt, ge, "
                        "le, sa or eb", prefixes=_ALL_PREFIXES),
        SearchParameter("address-postalcode", "string", "the current address's postcode (starts with)",
                        frozenset({"contains", "exact"})),
        SearchParameter("gender", "token", "male, female, other or unknown"),
        _ID,
    ],
    "RelatedPerson": [_PATIENT, _ID],
    "EpisodeOfCare": [_PATIENT, _ID],
    "CarePlan": [_PATIENT, _SUBJECT, _ID],
    "Encounter": [_PATIENT, _SUBJECT, _ID],
    "Flag": [_PATIENT, _SUBJECT, _ID],
    "Consent": [_PATIENT, _ID],
    "DocumentReference": [_PATIENT, _SUBJECT, _ID],
    "Task": [_PATIENT, _SUBJECT, _ID],  # Task.for
    "AuditEvent": [
        SearchParameter("patient", "reference", "the person the event touched (one)", frozenset({"Patient"}),
                        targets=_PATIENT_REF, alternatives=False, repeats=False),
        SearchParameter("agent", "reference", "the user, by token subject (one)", alternatives=False,
                        repeats=False),
        SearchParameter("date", "date", "when recorded, with eq, gt, lt, ge, le, sa or eb; repeat for a range",
                        prefixes=frozenset(PREFIXES) - {"ne"}, alternatives=False),
    ],
}

# Result parameters every search takes: name -> what the facade does with it.
RESULT_PARAMETERS = {
    "_count": "page size (0: the total only; above the most a page holds, 100 Patients or 500 others: capped)",
    "_include": "the Patient of each match (declared per type)",
    "_summary": "count only (the total, no entries)",
    "_total": "none (no total: saves counting every match), or accurate / estimate (counted exactly, the default)",
    "_totalMethod": "as _total (fhirpy sends count)",
    "_format": "json or application/fhir+json (XML: 406)",
    "_cursor": "the facade's own paging cursor, from a next link",
}


def includes_of(resource_type: str) -> list[str]:
    """The ``_include`` values a type offers: ``Type:param`` for each of its Patient references."""
    if resource_type in ("Patient", "AuditEvent"):
        return []
    return [f"{resource_type}:{p.name}" for p in PARAMETERS[resource_type] if p.type == "reference"]


# -- reading values ---------------------------------------------------------------------------------------


def _split(raw: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not escaped with a backslash; ``\\,`` ``\\|`` ``\\$`` ``\\\\`` unescape."""
    parts, current, escaped = [], [], False
    for ch in raw:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
            current.append(ch)
        elif ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", value)


_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?")


def parse_date(raw: str, allowed: frozenset[str] = _ALL_PREFIXES) -> DateValue:
    """``[prefix]`` and a FHIR date, dateTime or partial date as the range of instants it covers (UTC)."""
    prefix, text = (raw[:2], raw[2:]) if raw[:2] in PREFIXES else ("eq", raw)
    if prefix not in allowed:
        raise BadSearch(f"the prefix {prefix!r} is not supported here")
    match = _DATE.fullmatch(text)
    if not match:
        raise BadSearch(f"{raw!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)")
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        if hour is not None:
            start = datetime.fromisoformat(f"{year}-{month}-{day}T{hour}:{minute}:{second or '00'}"
                                           + ("+00:00" if zone in (None, "Z") else zone))
            end = start + (timedelta(seconds=1) if second else timedelta(minutes=1))
            return DateValue(prefix, start.astimezone(UTC), end.astimezone(UTC))
        first = date(int(year), int(month or 1), int(day or 1))
    except ValueError as exc:
        raise BadSearch(f"{raw!r} is not a FHIR date") from exc
    if day:
        last = first + timedelta(days=1)
    elif month:
        last = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    else:
        last = date(first.year + 1, 1, 1)
    return DateValue(prefix, datetime.combine(first, time.min, UTC), datetime.combine(last, time.min, UTC))


def parse_number(raw: str) -> NumberValue:
    """``[prefix]`` and a decimal."""
    prefix, text = (raw[:2], raw[2:]) if raw[:2] in PREFIXES else ("eq", raw)
    if prefix in ("sa", "eb"):
        raise BadSearch(f"the prefix {prefix!r} does not apply to numbers")
    try:
        return NumberValue(prefix, Decimal(text))
    except InvalidOperation as exc:
        raise BadSearch(f"{raw!r} is not a number") from exc


def parse_token(raw: str) -> TokenValue:
    """``system|code``, ``|code``, ``system|`` or ``code``."""
    parts = _split(raw, "|")
    if len(parts) == 1:
        return TokenValue(None, _unescape(parts[0]) or None)
    if len(parts) > 2:
        raise BadSearch(f"{raw!r} has more than one unescaped '|'")
    system, code = (_unescape(p) for p in parts)
    return TokenValue(system, code or None)


def parse_reference(raw: str, base: str, type_modifier: str | None) -> ReferenceValue:
    """``id``, ``Type/id``, or an absolute URL (``foreign`` unless it is under this server's ``base``)."""
    value = raw.strip()
    foreign = False
    if re.match(r"https?://", value):
        own = base.rstrip("/") + "/"
        foreign = not value.startswith(own)
        value = "/".join(value.rstrip("/").split("/")[-2:]) if foreign else value[len(own):]
    kind, _, rid = value.rpartition("/")
    if type_modifier and kind and kind != type_modifier:
        raise BadSearch(f"{raw!r} is not a {type_modifier}")
    if not rid:
        raise BadSearch(f"{raw!r} names no resource")
    return ReferenceValue(kind or type_modifier, rid, foreign)


def _value(param: SearchParameter, modifier: str | None, raw: str, base: str) -> Value:
    if param.type == "string":
        text = _unescape(raw).strip()
        if not text:
            raise BadSearch(f"{param.name} is empty")
        return StringValue(text)
    if param.type == "token":
        return parse_token(raw)
    if param.type == "date":
        return parse_date(raw, param.prefixes)
    if param.type == "reference":
        return parse_reference(_unescape(raw), base, modifier if modifier in param.targets else None)
    return parse_number(raw)


# -- reading a query ----------------------------------------------------------------------------------


def parse_search(resource_type: str, pairs: list[tuple[str, str]], *, base: str, lenient: bool = False,
                 default_count: int = 20, max_count: int = MAX_COUNT) -> Search:
    """Read a search's query pairs for ``resource_type``; :class:`BadSearch` for what cannot be honoured.

    ``lenient`` (``Prefer: handling=lenient``) leaves out unknown parameters and
    modifiers instead of refusing them; values that cannot be read are refused
    either way, since ignoring them would widen the answer.
    """
    offered = {p.name: p for p in PARAMETERS[resource_type]}
    search = Search(resource_type, count=default_count)
    seen: set[str] = set()

    def refuse(key: str, why: str) -> None:
        if not lenient:
            raise BadSearch(f"{why} (send 'Prefer: handling=lenient' to have it ignored)")
        search.ignored.append(key)

    for key, raw in pairs:
        name, _, modifier = key.partition(":")
        if name == "_count" or (name == "_summary" and raw == "count"):
            search.count = 0 if name == "_summary" else _count(raw, max_count)
            search.applied.append((key, raw if name == "_summary" else str(search.count)))
        elif name == "_cursor":
            search.cursor = raw
        elif name == "_include":
            if raw in includes_of(resource_type):
                search.includes.append(raw)
                search.applied.append((key, raw))
            else:
                refuse(key, f"_include={raw!r} is not offered on {resource_type} "
                            f"(offered: {', '.join(includes_of(resource_type)) or 'none'})")
        elif name in ("_total", "_totalMethod") and raw in ("accurate", "count", "estimate", "none"):
            search.counted = raw != "none"
            search.applied.append((key, raw))
        elif name == "_format":
            search.applied.append((key, raw))  # XML was refused before the search was read
        elif name not in offered:
            refuse(key, f"{resource_type} has no search parameter {name!r}")
        elif modifier and modifier not in offered[name].modifiers:
            refuse(key, f"{name} does not support the modifier :{modifier}")
        else:
            param = offered[name]
            if not raw:
                raise BadSearch(f"{name} has no value")
            alternatives = _split(raw, ",")
            if len(alternatives) > MAX_ALTERNATIVES:
                raise BadSearch(f"{name} takes at most {MAX_ALTERNATIVES} comma-separated values")
            if len(search.criteria) >= MAX_CRITERIA:
                raise BadSearch(f"a search takes at most {MAX_CRITERIA} parameters")
            if len(alternatives) > 1 and not param.alternatives:
                raise BadSearch(f"{name} takes one value at a time here (no comma OR)")
            if name in seen and not param.repeats:
                raise BadSearch(f"{name} may be given once here")
            seen.add(name)
            values = tuple(_value(param, modifier or None, alt, base) for alt in alternatives)
            search.criteria.append(Criterion(param, modifier or None, values))
            search.applied.append((key, raw))
    return search


def _count(raw: str, max_count: int) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadSearch(f"_count {raw!r} is not a whole number") from exc
    if value < 0:
        raise BadSearch("_count cannot be negative")
    return min(value, max_count)


def wants_lenient(prefer: str | None) -> bool:
    """True when a ``Prefer`` header asks for lenient handling."""
    return bool(prefer) and any(p.strip().lower() == "handling=lenient" for p in (prefer or "").split(";")
                                for p in p.split(","))


__all__ = [
    "MAX_COUNT", "PARAMETERS", "PREFIXES", "RESULT_PARAMETERS", "BadSearch", "Criterion", "DateValue", "NumberValue",
    "ReferenceValue", "Search", "SearchParameter", "StringValue", "TokenValue", "includes_of", "parse_date",
    "parse_number", "parse_reference", "parse_search", "parse_token", "wants_lenient",
]
