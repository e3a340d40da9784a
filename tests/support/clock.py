"""A clock a test moves on by hand, so waiting out a cool-down or an expiry costs no real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SteppedClock:
    """The real time plus however far the test has stepped it on: ``clock()`` for a UTC datetime,
    ``clock.timestamp()`` for POSIX seconds, ``clock.advance(seconds)`` to move it on."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def timestamp(self) -> float:
        """POSIX seconds, as ``time.time()`` would answer once stepped."""
        return self().timestamp()

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds``."""
        self.offset += timedelta(seconds=seconds)
