"""The types of the API's path, query and body values, declared once so every route refuses the same way.

A row id beyond what any store column holds (a 64-bit integer), a negative
offset or a date-time without a time zone is refused by validation with a 422
(problem+json on /api, an OperationOutcome on /fhir: :mod:`hub.api.problems`),
before the store sees it; otherwise SQLite raises OverflowError, PostgreSQL
"out of range" and the UTC columns "naive datetime", each a 500.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import AwareDatetime, Field

# The largest value of a BIGINT (PostgreSQL) and of SQLite's INTEGER: every id column of the store.
MAX_ROW_ID = 2**63 - 1

RowIdValue = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
"""A row id in a JSON body."""

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The row's id.")]
"""A row id in the path (a review, a merge, a delivery, a quarantine entry)."""

AfterId = Annotated[int | None, Query(ge=0, le=MAX_ROW_ID, description="Id of the last row of the previous page.")]
"""A keyset cursor that is a row id."""

Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="Rows to skip.")]

Moment = AwareDatetime
"""A date-time with its time zone (``2025-01-01T00:00:00Z``); one without is refused."""

MomentQuery = Annotated[AwareDatetime | None,
                        Query(description="A date-time with its time zone, e.g. 2025-01-01T00:00:00Z.")]


def row_cursor(text: str) -> int | None:
    """The row id a cursor this server gave stands for; None for anything else (too long, negative, not a number)."""
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_ROW_ID)):
        return None
    value = int(text)
    return value if value <= MAX_ROW_ID else None


__all__ = ["MAX_ROW_ID", "AfterId", "Moment", "MomentQuery", "Offset", "RowId", "RowIdValue", "row_cursor"]
