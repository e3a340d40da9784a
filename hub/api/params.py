"""The types of the API's path, query and body values, declared once so every route refuses the same way.

A row id beyond what any store column holds (a 64-bit integer), a negative
offset or a date-time without a time zone is refused by validation with a 422
(problem+json on /api, an OperationOutcome on /fhir: :mod:`hub.api.problems`),
before the store sees it; otherwise SQLite raises OverflowError, PostgreSQL
"out of range" and the UTC columns "naive datetime", each a 500.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import unquote_to_bytes

from fastapi import Path, Query, Request
from pydantic import AwareDatetime, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.api.problems import hub_error_response
from hub.errors import BadRequest

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


# A control character (C0 or DEL) anywhere in the address: no id, name or search term holds one, and a NUL
# reaches PostgreSQL as an error (its text cannot hold one).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")


class RefuseControlCharacters:
    """Answers 400 (problem+json, or an OperationOutcome on /fhir) to a request whose path or query string holds
    a control character, before any route, the hot reads included, sees it. Sits inside the audit middleware,
    so the refusal leaves its row."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (_CONTROL.search(scope["path"])
                                        or _CONTROL_BYTES.search(unquote_to_bytes(scope.get("query_string", b"")))):
            request = Request(scope, receive)
            response = hub_error_response(request, BadRequest("the address holds a control character"))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


__all__ = ["MAX_ROW_ID", "AfterId", "Moment", "MomentQuery", "Offset", "RefuseControlCharacters", "RowId", "RowIdValue",
           "row_cursor"]
