"""Turn what a source typed into comparable values: names, dates, postcodes, address lines.

Each function is lenient: it never raises on bad input, it returns ``None`` (or
an empty value) for what it cannot read, because one garbled field must not stop
a record from being matched on the others.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

from hub.model.validators import is_valid_nhs_number

_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "sir", "dame", "master"})
_NOT_LETTER = re.compile(r"[^a-z\s-]")
_SPACES = re.compile(r"\s+")
_ADDRESS_WORDS = {
    "rd": "road",
    "st": "street",
    "ave": "avenue",
    "av": "avenue",
    "ln": "lane",
    "dr": "drive",
    "cl": "close",
    "cres": "crescent",
    "cresc": "crescent",
    "ct": "court",
    "gdns": "gardens",
    "gdn": "gardens",
    "pl": "place",
    "sq": "square",
    "ter": "terrace",
    "terr": "terrace",
    "gr": "grove",
    "pk": "park",
    "hse": "house",
    "apt": "flat",
    "apartment": "flat",
    "wy": "way",
}
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})")
_UK_DATE = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*$")
_YEAR = re.compile(r"^\s*(\d{4})\s*$")
_COMPACT_DATE = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
_NUMERIC_POSTCODE = re.compile(r"^\d{3,10}$")
_NOT_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")
_NHS_SEPARATORS = re.compile(r"[\s-]")


@lru_cache(maxsize=1 << 16)
def fold(text: str) -> str:
    """Lower-case and strip accents, so 'Zoë' and 'ZOE' compare equal."""
    if text.isascii():  # nothing to decompose: most of what sources type, at a fraction of the cost
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def name_tokens(text: str | None) -> list[str]:
    """A name's words: folded, apostrophes dropped (O'Brien -> obrien), hyphens split."""
    if not text:
        return []
    cleaned = _NOT_LETTER.sub("", fold(text).replace("'", "").replace("\u2019", ""))
    return [t for t in _SPACES.split(cleaned.replace("-", " ")) if t]


@lru_cache(maxsize=1 << 16)
def given_name(text: str | None) -> str | None:
    """The first given name, without titles ('Mrs M' -> 'm')."""
    tokens = [t for t in name_tokens(text) if t not in _TITLES]
    return tokens[0] if tokens else None


@lru_cache(maxsize=1 << 16)
def family_name(text: str | None) -> str | None:
    """The family name as one comparable string; double-barrelled parts joined by a space."""
    tokens = name_tokens(text)
    return " ".join(tokens) if tokens else None


def birth_parts(value: str | date | None) -> tuple[int, int, int]:
    """(year, month, day) of a birth date; 0 for a part that is not known.

    Reads YYYY-MM-DD, YYYYMMDD (HL7 v2 and many exports), DD/MM/YYYY and a bare year; an
    impossible date keeps its year only, since the year is what survives most typing errors.
    """
    if value is None:
        return (0, 0, 0)
    if isinstance(value, date):
        return (value.year, value.month, value.day)
    text = value.strip()
    iso = _ISO_DATE.match(text) or _COMPACT_DATE.match(text)
    if iso:
        y, m, d = int(iso.group(1)), int(iso.group(2)), int(iso.group(3))
    else:
        uk = _UK_DATE.match(text)
        if uk:
            d, m, y = int(uk.group(1)), int(uk.group(2)), int(uk.group(3))
        else:
            year = _YEAR.match(text)
            return (int(year.group(1)), 0, 0) if year else (0, 0, 0)
    if not 1800 <= y <= 2200:
        return (0, 0, 0)
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return (y, 0, 0)
    return (y, m, d)


def postcode_parts(value: str | None) -> tuple[str, str, str] | None:
    """(full, sector, district) of a UK-shaped postcode, e.g. ('LS6 2AB', 'LS6 2', 'LS6').

    A numeric postcode of another country (3-10 digits: Australia's 2119, a US ZIP) is kept
    whole as all three parts, so it agrees or differs as one value.
    """
    if not value:
        return None
    compact = _NOT_ALPHANUMERIC.sub("", value).upper()
    if _NUMERIC_POSTCODE.match(compact):
        return (compact, compact, compact)
    if not 5 <= len(compact) <= 7 or not compact[-3].isdigit():
        return None
    outward, inward = compact[:-3], compact[-3:]
    return (f"{outward} {inward}", f"{outward} {inward[0]}", outward)


@lru_cache(maxsize=1 << 16)
def address_line(value: str | None) -> str | None:
    """An address line with punctuation gone and common abbreviations spelt out."""
    if not value:
        return None
    words = re.sub(r"[^a-z0-9\s]", " ", fold(value)).split()
    line = " ".join(_ADDRESS_WORDS.get(w, w) for w in words)
    return line or None


def nhs_number(value: str | None) -> str | None:
    """A valid ten-digit NHS number, or None (a number failing its check digit is no evidence)."""
    if not value:
        return None
    digits = value if value.isdigit() else _NHS_SEPARATORS.sub("", value)
    return digits if is_valid_nhs_number(digits) else None


def sex_code(value: str | None) -> int:
    """1 male, 2 female, 3 other, 0 not known (accepts M/F, male/female, 1/2 as NHS codes)."""
    if not value:
        return 0
    text = value.strip().lower()
    if text in {"m", "male", "1", "man", "boy"}:
        return 1
    if text in {"f", "female", "2", "woman", "girl"}:
        return 2
    if text in {"o", "other", "9", "x", "i", "indeterminate"}:
        return 3
    return 0
