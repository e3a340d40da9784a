"""Messages pushed to the hub by listeners (an MLLP feed, a webhook), kept verbatim whatever became of them.

A listener keeps every message it receives here, good or bad, with what it
answered: the acknowledgement code and, for a refusal, the reason. A message
that was applied carries a ``dedupe_key`` (sender and the sender's message id),
unique, so the same message resent is recognised and changes nothing; one that
was refused carries none, so the sender may fix it and send it again under the
same id. ``raw`` is the message as text in the sender's character set, or
base64 (``raw_format``) for bytes no text column can hold (NULs, invalid code).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Index, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.store.tables import Base, BigId, utcnow

ACCEPTED, DUPLICATE, REFUSED, FAILED = "accepted", "duplicate", "refused", "failed"
CONFLICT = "conflict"  # same sender and message id as one applied, different content: kept, not applied


class InboundMessage(Base):
    """One message as a listener received it, with the answer it was given."""

    __tablename__ = "inbound_messages"
    __table_args__ = (Index("ix_inbound_messages_channel_received", "channel", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    peer: Mapped[str | None] = mapped_column(String(64))
    sender: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(64))
    message_type: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16))
    answer: Mapped[str | None] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    raw_format: Mapped[str] = mapped_column(String(8), default="text")
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True)


def applied_messages(session: Session, keys: Iterable[str]) -> dict[str, bytes]:
    """The bytes of the applied message behind each of these dedupe keys that has one."""
    wanted = list(set(keys))
    found: dict[str, bytes] = {}
    for start in range(0, len(wanted), 500):
        rows = session.scalars(select(InboundMessage).where(InboundMessage.dedupe_key.in_(wanted[start:start + 500])))
        found.update({row.dedupe_key: raw_bytes(row) for row in rows if row.dedupe_key})
    return found


def same_message(kept: bytes, raw: bytes) -> bool:
    """True when two messages say the same thing: the same bytes once line endings and framing whitespace are
    set aside (a kept text message comes back re-encoded as UTF-8, so both are compared as text)."""
    def text(data: bytes) -> str:
        for codec in ("utf-8", "cp1252"):
            try:
                decoded = data.decode(codec)
                break
            except UnicodeDecodeError:
                continue
        else:
            decoded = data.decode("latin-1")
        return decoded.strip("\x00 \t\r\n").replace("\r\n", "\r").replace("\n", "\r")
    return kept == raw or text(kept) == text(raw)


def raw_columns(raw: bytes, codec: str | None) -> dict[str, str]:
    """``raw`` and ``raw_format`` for a message's bytes: text when they decode cleanly, base64 otherwise."""
    for name in (codec, "utf-8"):
        if not name:
            continue
        try:
            text = raw.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
        if "\x00" not in text:
            return {"raw": text, "raw_format": "text"}
    return {"raw": base64.b64encode(raw).decode("ascii"), "raw_format": "base64"}


def raw_bytes(message: InboundMessage) -> bytes:
    """The bytes a kept message arrived as (text re-encoded as UTF-8)."""
    return base64.b64decode(message.raw) if message.raw_format == "base64" else message.raw.encode("utf-8")
