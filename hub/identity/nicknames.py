"""The shipped list of UK given-name nicknames (Peggy/Margaret, Bill/William, Jack/John...).

``data/nicknames.csv`` holds ``name,nickname`` pairs. Names that share a formal
name are nicknames of each other too (Peggy and Meg are both Margaret), so each
name maps to the set of formal names it can stand for.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

NICKNAME_FILE = Path(__file__).resolve().parent / "data" / "nicknames.csv"


@lru_cache(maxsize=1)
def nickname_groups() -> dict[str, frozenset[str]]:
    """Each known name (folded, lower-case) -> the formal names it can stand for."""
    groups: dict[str, set[str]] = {}
    with NICKNAME_FILE.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            formal, nick = row["name"].strip().lower(), row["nickname"].strip().lower()
            groups.setdefault(formal, set()).add(formal)
            groups.setdefault(nick, set()).add(formal)
    return {name: frozenset(formals) for name, formals in groups.items()}


def are_nicknames(a: str, b: str) -> bool:
    """True when two different given names can be the same person's (a nickname pair)."""
    if a == b:
        return False
    groups = nickname_groups()
    left, right = groups.get(a), groups.get(b)
    return bool(left and right and left & right)
