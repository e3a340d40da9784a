"""Values fitted to the length of their column, the same way every time.

PostgreSQL refuses a value longer than its ``VARCHAR(n)`` column (and any text
holding NUL); SQLite stores either. A value from outside (a token's subject, a
header, a path, an HL7 control id) that does not fit is kept as a prefix, a
``~`` and 16 hex digits of the SHA-256 of the whole value: deterministic, so a
later search for the same value finds it, and two long values that share a
prefix stay two values (a plain cut would make them one: a message dropped as
a "duplicate", two users' audit rows merged).
"""

from __future__ import annotations

import hashlib
from typing import Any

DIGEST_CHARS = 16


def fit(value: str, length: int) -> str:
    """``value`` if it fits ``length`` characters and holds no NUL; else its fitted form (see the module)."""
    if len(value) <= length and "\x00" not in value:
        return value
    clean = value.replace("\x00", "\ufffd")
    if length <= DIGEST_CHARS + 1:
        return clean[:length]
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_CHARS]
    return f"{clean[:length - DIGEST_CHARS - 1]}~{digest}"


def fit_to(column: Any, value: str | None) -> str | None:
    """``value`` fitted to ``column`` (a mapped attribute or a Column of a ``String(n)`` type); None stays None."""
    if value is None:
        return None
    length = column.type.length
    return fit(value, length) if length else value.replace("\x00", "\ufffd")


__all__ = ["fit", "fit_to"]
