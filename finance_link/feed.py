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

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from finance_link.commitments import FEED_COLUMNS, feed_item
from hub.api.params import row_cursor
from hub.errors import HubError
from hub.store.finance import FinanceVersion

CURSOR_PREFIX = "fv1."
_ID = FinanceVersion.__table__.c.id
_ITEM = FinanceVersion.__table__.c.item


class InvalidFeedCursor(HubError):
    """A ``since`` cursor the feed never handed out."""

    code = "CAREHUB-E420"
    http_status = 422


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One page of the feed: each version's JSON (as stored when it was written) and the cursor to ask for next."""

    raw: list[str]
    next: str

    @property
    def items(self) -> list[dict[str, Any]]:
        """The versions, parsed."""
        return [orjson.loads(item) for item in self.raw]

    def as_json(self) -> dict[str, Any]:
        """The page as the API answers it."""
        return {"items": self.items, "next": self.next}

    def as_bytes(self) -> bytes:
        """The page as JSON bytes, the stored items joined as they are."""
        return b'{"items":[' + ",".join(self.raw).encode() + b'],"next":' + orjson.dumps(self.next) + b"}"


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
    rows = session.execute(select(_ID, _ITEM).where(after < _ID).order_by(_ID).limit(limit)).all()
    raw = [item if item is not None else _made(session, position) for position, item in rows]
    return FeedPage(raw, encode_cursor(rows[-1][0] if rows else after))


def _made(session: Session, position: int) -> str:
    """The item of a version written before items were kept (migration 0012_finance_items)."""
    version = session.get(FinanceVersion, position)
    assert version is not None
    return orjson.dumps(feed_item(version)).decode()


def iter_pages(session: Session, since: str | None, limit: int) -> Iterator[FeedPage]:
    """Every page from ``since`` to the end of the feed."""
    while True:
        page = read_page(session, since, limit)
        if not page.raw:
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
