"""Address text to comparable tokens: case, punctuation, abbreviations, numbers, postcodes.

Both sides of a match go through the same normaliser, so the gazetteer's
``HIGH STREET`` and a case note's ``High St.`` become the same tokens. Street
words are reduced to their short forms (``STREET`` and ``SAINT`` both become
``ST``, which is harmless because both sides agree). Numbers keep their
suffixes (``14A``), ranges (``12-14``) and flat/building pairs (``14/2``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from hub.model.validators import normalise_postcode

SHORT_FORMS = {
    "STREET": "ST",
    "STR": "ST",
    "SAINT": "ST",
    "ROAD": "RD",
    "AVENUE": "AVE",
    "AV": "AVE",
    "AVE": "AVE",
    "AVN": "AVE",
    "CRESCENT": "CRES",
    "CRESC": "CRES",
    "CRS": "CRES",
    "DRIVE": "DR",
    "DRV": "DR",
    "LANE": "LN",
    "PLACE": "PL",
    "COURT": "CT",
    "CRT": "CT",
    "GARDENS": "GDNS",
    "GDN": "GDNS",
    "TERRACE": "TERR",
    "TCE": "TERR",
    "TER": "TERR",
    "CLOSE": "CL",
    "GROVE": "GR",
    "GRV": "GR",
    "SQUARE": "SQ",
    "PARADE": "PDE",
    "MOUNT": "MT",
    "HSE": "HOUSE",
    "COTT": "COTTAGE",
    "COTTS": "COTTAGES",
    "APARTMENT": "FLAT",
    "APT": "FLAT",
    "FLT": "FLAT",
    "LIMITED": "LTD",
    "ESTATE": "EST",
    "BUILDINGS": "BLDGS",
    "1ST": "FIRST",
    "2ND": "SECOND",
    "3RD": "THIRD",
    "GRD": "GROUND",
    "GND": "GROUND",
    "GRND": "GROUND",
    "BSMT": "BASEMENT",
    "FLR": "FLOOR",
}
DROPPED = frozenset({"NO", "NUMBER"})
FLAT_WORDS = frozenset({"FLAT", "UNIT", "ROOM", "SUITE", "STUDIO", "MAISONETTE"})
FLOOR_WORDS = frozenset(
    {"GROUND", "FIRST", "SECOND", "THIRD", "TOP", "BASEMENT", "LOWER", "UPPER", "FLOOR", "GARDEN"}
)

_POSTCODE = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})\b")
_OUTWARD = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")
_RANGE = re.compile(r"\b(\d+[A-Z]?)\s*-\s*(\d+[A-Z]?)\b")
_SLASH = re.compile(r"\b(\d+[A-Z]?(?:-\d+[A-Z]?)?)\s*/\s*(\d+[A-Z]?(?:-\d+[A-Z]?)?)\b")
_DROP = re.compile(r"['’`]")
_PUNCT = re.compile(r"[^A-Z0-9/\-]+")
_NUMBER = re.compile(r"^\d+[A-Z]?$")
_NUMBER_RANGE = re.compile(r"^\d+[A-Z]?-\d+[A-Z]?$")
_PAIR = re.compile(r"^(\d+[A-Z]?(?:-\d+[A-Z]?)?)/(\d+[A-Z]?(?:-\d+[A-Z]?)?)$")
_SINGLE_LETTER = re.compile(r"^[A-Z]$")


def is_number(token: str) -> bool:
    """True for a house or flat number, maybe with suffix or range (``14``, ``14A``, ``12-14``)."""
    return bool(_NUMBER.match(token) or _NUMBER_RANGE.match(token))


def is_unit_id(token: str) -> bool:
    """True for what can follow FLAT: a number (``2``, ``2A``) or a letter (``B``)."""
    return bool(_NUMBER.match(token) or _SINGLE_LETTER.match(token))


def split_pair(token: str) -> tuple[str, str] | None:
    """``14/2`` -> (``14``, ``2``); anything else -> None."""
    found = _PAIR.match(token)
    return (found.group(1), found.group(2)) if found else None


def tokens(text: str) -> list[str]:
    """Upper-case tokens in short forms; ranges and pairs kept whole; ``14 A`` joined to ``14A``."""
    upper = _DROP.sub("", text.upper()).replace("&", " AND ")
    upper = _RANGE.sub(r" \1-\2 ", upper)
    upper = _SLASH.sub(r" \1/\2 ", upper)
    out: list[str] = []
    for raw in _PUNCT.sub(" ", upper).split():
        if "-" in raw and not (_NUMBER_RANGE.match(raw) or _PAIR.match(raw)):
            parts = [p for p in raw.split("-") if p]
        else:
            parts = [raw]
        for part in parts:
            word = SHORT_FORMS.get(part, part)
            if word in DROPPED:
                continue
            if (
                _SINGLE_LETTER.match(word)
                and out
                and out[-1].isdigit()
                and (len(out) < 2 or out[-2] not in FLAT_WORDS)
            ):
                out[-1] += word
                continue
            out.append(word)
    return out


@lru_cache(maxsize=65536)
def phrase(text: str | None) -> str:
    """A name as one normalised string (``High Street`` -> ``HIGH ST``); empty for None."""
    return " ".join(tokens(text)) if text else ""


@dataclass(frozen=True)
class Postcode:
    """A postcode found in free text: the full unit if there was one, else the outward code."""

    full: str | None
    outward: str | None


def take_postcode(text: str) -> tuple[str, Postcode]:
    """Remove the last postcode from ``text``; return what is left and what was found."""
    upper = text.upper()
    for found in reversed(list(_POSTCODE.finditer(upper))):
        try:
            full = normalise_postcode(found.group(1) + found.group(2))
        except ValueError:
            continue
        rest = upper[: found.start()] + " " + upper[found.end() :]
        return rest, Postcode(full, full.split()[0])
    words = _PUNCT.sub(" ", upper).split()
    if words and _OUTWARD.match(words[-1]) and not words[-1].isdigit():
        cut = upper.rstrip(" ,.").rfind(words[-1])
        return upper[:cut], Postcode(None, words[-1])
    return upper, Postcode(None, None)


def unit_key(
    start: int | None, suffix: str | None, end: int | None, end_suffix: str | None, text: str | None
) -> str:
    """A comparable key for an SAO (or PAO) from BS7666 parts.

    Numbers win: ``2`` for SAO start number 2 or SAO text ``FLAT 2``; ``B`` for
    ``FLAT B``; otherwise the words without the generic flat word (``GROUND FLOOR``).
    """
    if start is not None:
        key = f"{start}{suffix or ''}"
        return f"{key}-{end}{end_suffix or ''}" if end is not None else key
    if not text:
        return ""
    words = tokens(text)
    ids = [w for w in words if is_unit_id(w)]
    if len(ids) == 1:
        return ids[0]
    rest = [w for w in words if w not in FLAT_WORDS]
    return " ".join(rest) if rest else " ".join(words)


def pao_key(start: int | None, suffix: str | None, end: int | None, end_suffix: str | None) -> str:
    """The PAO's numbers as one key (``14``, ``14A``, ``12-14``); empty when it has none."""
    if start is None:
        return ""
    key = f"{start}{suffix or ''}"
    return f"{key}-{end}{end_suffix or ''}" if end is not None else key
