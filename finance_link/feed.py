"""The finance feed: every commitment version exactly once, in order, behind an opaque cursor.

Versions are read by id after the cursor (``finance_versions.id`` rises in commit
order, see :mod:`hub.store.finance`), so a finance system that keeps the ``next``
cursor of each page it has loaded gets every new or changed version once, across
pages and across restarts of the hub or of itself. The same columns go to a CSV
for ledgers that load files.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from finance_link.commitments import FEED_COLUMNS, feed_item
from hub.api.params import row_cursor
from hub.errors import HubError
from hub.store.finance import FinanceVersion

CURSOR_PREFIX = "fv1."


class InvalidFeedCursor(HubError):
    """A ``since`` cursor the feed never handed out."""

    code = "CAREHUB-E420"
    http_status = 422


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One page of the feed: the versions and the cursor to ask for next."""

    items: list[dict[str, Any]]
    next: str

    def as_json(self) -> dict[str, Any]:
        """The page as the API answers it."""
        return {"items": self.items, "next": self.next}


def encode_cursor(position: int) -> str:
    """The opaque cursor after the version with id ``position``."""
    return f"{CURSOR_PREFIX}{position}"


def decode_cursor(cursor: str | None) -> int:
    """The version id a cursor stands after (0 for none); InvalidFeedCursor for anything else."""
    if not cursor:
        return 0
    position = row_cursor(cursor.removeprefix(CURSOR_PREFIX)) if cursor.startswith(CURSOR_PREFIX) else None
    if position is None:
        raise InvalidFeedCursor(f"since={cursor!r} is not a cursor this feed gave out")
    return position


def read_page(session: Session, since: str | None, limit: int) -> FeedPage:
    """Up to ``limit`` versions after ``since``, oldest first, and the cursor after the last."""
    after = decode_cursor(since)
    rows = session.scalars(select(FinanceVersion).where(FinanceVersion.id > after)
                           .order_by(FinanceVersion.id).limit(limit)).all()
    position = rows[-1].id if rows else after
    return FeedPage([feed_item(v) for v in rows], encode_cursor(position))


def iter_pages(session: Session, since: str | None, limit: int) -> Iterator[FeedPage]:
    """Every page from ``since`` to the end of the feed."""
    while True:
        page = read_page(session, since, limit)
        if not page.items:
            return
        yield page
        since = page.next


def write_csv(session: Session, since: str | None, out: TextIO, limit: int = 5000) -> tuple[int, str]:
    """The feed from ``since`` as CSV (the feed's columns, money as 2-place decimals); (rows, next cursor)."""
    writer = csv.DictWriter(out, fieldnames=FEED_COLUMNS, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    count, cursor = 0, since or encode_cursor(decode_cursor(since))
    for page in iter_pages(session, since, limit):
        writer.writerows(page.items)
        count += len(page.items)
        cursor = page.next
    return count, cursor
