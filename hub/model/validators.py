"""Checks the canonical model applies at the edge: NHS number, postcode, dates.

Each check raises ``ValueError`` with a short message (pydantic turns it into a
validation error) so the pipeline can quarantine the record with a reason.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from operator import mul

# Text a person's name may hold: no control characters (C0, DEL, C1: NUL, newlines, escapes) and no
# bidirectional controls (U+061C, U+200E/F, U+202A-U+202E overrides, U+2066-U+2069 isolates), which make a
# name display as something other than what it is. Checked by pydantic's own regex engine (no Python call).
SAFE_TEXT = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
SAFE_TEXT_MESSAGE = "contains a control or text-direction character"
# Longest name part the hub keeps (a family name, one given name, a title) and most given names in one name.
MAX_NAME_PART = 100
MAX_PREFIX = 40
MAX_GIVEN_NAMES = 10
# Most names one person carries: the current ones and the former ones a source keeps sending.
MAX_NAMES = 20

_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_ZERO_WEIGHT = ord("0") * sum(_NHS_WEIGHTS)  # what the ASCII codes add to the weighted sum of the digits
_NHS_SEPARATORS = re.compile(r"[\s-]")
_SPACES = re.compile(r"\s+")

# The shape of a UK postcode (BS7666 / Royal Mail): outward code, a space, inward code.
_POSTCODE = re.compile(
    r"^(GIR 0AA|[A-PR-UWYZ](\d[\dA-HJKPSTUW]?|[A-HK-Y]\d[\dABEHMNPRV-Y]?) \d[ABD-HJLNP-UW-Z]{2})$"
)


def nhs_number_check_digit(first_nine: str) -> int | None:
    """Return the modulus-11 check digit for nine digits, or None if none is valid."""
    total = sum(int(d) * w for d, w in zip(first_nine, _NHS_WEIGHTS, strict=True))
    check = 11 - (total % 11)
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def synthetic_nhs_number(seed: int) -> str:
    """A valid NHS number from the 999 test range (never issued to anyone)."""
    n = seed % 1_000_000
    while True:
        first = f"999{n:06d}"
        check = nhs_number_check_digit(first)
        if check is not None:
            return f"{first}{check}"
        n = (n + 1) % 1_000_000


def is_valid_nhs_number(value: str) -> bool:
    """True when ``value`` is ten digits whose last is the modulus-11 check digit."""
    if len(value) != 10 or not value.isdigit():
        return False
    if value.isascii():  # the digits' ASCII codes, weighted in C: every person's number is checked twice
        codes = value.encode()
        check = 11 - (sum(map(mul, codes, _NHS_WEIGHTS)) - _ZERO_WEIGHT) % 11
        return (0 if check == 11 else check) == codes[9] - 48
    return nhs_number_check_digit(value[:9]) == int(value[9])


def normalise_nhs_number(value: str) -> str:
    """Strip spaces and dashes; raise ValueError unless a valid NHS number remains."""
    digits = value if value.isdigit() else _NHS_SEPARATORS.sub("", value)
    if len(digits) != 10 or not digits.isdigit():
        raise ValueError("NHS number must be ten digits")
    if not is_valid_nhs_number(digits):
        raise ValueError("NHS number fails the modulus-11 check digit")
    return digits


def normalise_postcode(value: str) -> str:
    """Upper-case, single space before the inward code; raise ValueError if not a UK shape."""
    if _POSTCODE.fullmatch(value):  # already so: what the steps below would give back
        return value
    compact = _SPACES.sub("", value).upper()
    if len(compact) < 5 or len(compact) > 7:
        raise ValueError("postcode is not a UK postcode shape")
    formatted = f"{compact[:-3]} {compact[-3:]}"
    if not _POSTCODE.match(formatted):
        raise ValueError("postcode is not a UK postcode shape")
    return formatted


def not_in_future(value: date, what: str) -> date:
    """Raise ValueError when ``value`` is after today (UTC)."""
    if value > _today():
        raise ValueError(f"{what} is in the future")
    return value


_day: tuple[float, float, date] = (0.0, 0.0, date.min)  # (the UTC day's first and next day's first second; it)


def _today() -> date:
    """Today's UTC date, kept for as long as the clock reads that day (every record's dates are checked)."""
    global _day
    starts, ends, today = _day
    if not starts <= time.time() < ends:
        today = datetime.now(UTC).date()
        midnight = datetime.combine(today, datetime.min.time(), UTC)
        _day = (midnight.timestamp(), (midnight + timedelta(days=1)).timestamp(), today)
    return today


def end_not_before_start(start: date | datetime | None, end: date | datetime | None) -> None:
    """Raise ValueError when both are given and end is before start."""
    if start is not None and end is not None and _as_date(end) < _as_date(start):
        raise ValueError("end is before start")


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value
