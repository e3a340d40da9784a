"""A target that accepts every event and does nothing: the benchmark's floor for the delivery path.

Its receipt is the event's idempotency key, so pushing the same event twice
answers the same receipt, as every target must.
"""

from __future__ import annotations

from hub.contract import ChangeEvent, PushResult
from hub.delivery.config import TargetSettings


class NoopTarget:
    """Accepts every event of every batch at once."""

    def __init__(self, name: str, settings: TargetSettings) -> None:
        self.name = name
        self.settings = settings

    def push(self, batch: list[ChangeEvent]) -> list[PushResult]:
        """Accept the whole batch."""
        return [PushResult(e.event_id, True, receipt=e.idempotency_key) for e in batch]

    def close(self) -> None:
        """Nothing to release."""
