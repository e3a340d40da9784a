"""A target adapter that pushes change events as a JSON batch over HTTP (requests).

Protocol: ``POST {url}`` with ``{"events": [{"idempotency_key", "event_id",
"ordering_key", "sequence", "entity_type", "entity_id", "person_id", "kind",
"version", "payload"}]}``; each event carries its own idempotency key (entity id
and version) and the request an ``Idempotency-Key`` header naming the batch.
The target answers ``{"results": [{"idempotency_key", "status", "receipt" |
"reason"}]}``: per event 2xx (or 409, already had it) is accepted, 429/5xx is
transient and any other 4xx is a permanent refusal with the target's reason.

This module is the one boundary where requests' errors become hub errors:
connection failures, timeouts, 5xx and 429 for the whole batch raise
:class:`~hub.errors.RetryableError`; any other 4xx for the whole batch raises
:class:`~hub.errors.PermanentDeliveryError`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import requests

from hub.contract import ChangeEvent, PushResult
from hub.delivery.config import TargetSettings
from hub.errors import ConfigError, PermanentDeliveryError, RetryableError, SourceUnavailable


def _transient(status: int) -> bool:
    return status == 429 or status >= 500


class HttpTarget:
    """Pushes batches to one HTTP endpoint; options: ``url`` (required), ``headers``."""

    def __init__(self, name: str, settings: TargetSettings) -> None:
        self.name = name
        self.settings = settings
        url = settings.options.get("url")
        if not url:
            raise ConfigError(f"target {name!r} needs options.url")
        self.url = str(url)
        self.timeout = settings.timeout_seconds
        self.session = requests.Session()
        self.session.headers.update({"Content-Type": "application/json", "Accept": "application/json"})
        self.session.headers.update({str(k): str(v) for k, v in settings.options.get("headers", {}).items()})

    @staticmethod
    def body(batch: list[ChangeEvent]) -> dict[str, Any]:
        """The JSON document one push sends."""
        return {"events": [
            {"idempotency_key": e.idempotency_key, "event_id": e.event_id, "ordering_key": e.ordering_key,
             "sequence": e.sequence, "entity_type": e.entity_type, "entity_id": e.entity_id,
             "person_id": e.person_id, "kind": e.kind, "version": e.version, "payload": e.payload}
            for e in batch
        ]}

    def push(self, batch: list[ChangeEvent]) -> list[PushResult]:
        """POST the batch and read one result per event."""
        keys = [e.idempotency_key for e in batch]
        batch_key = hashlib.sha256("\n".join(keys).encode()).hexdigest()
        try:
            response = self.session.post(self.url, data=orjson.dumps(self.body(batch)),
                                         headers={"Idempotency-Key": batch_key}, timeout=self.timeout)
            answer = orjson.loads(response.content) if response.content else {}
        except requests.RequestException as exc:
            raise SourceUnavailable(f"target {self.name} at {self.url} unreachable: {type(exc).__name__}") from exc
        except ValueError as exc:
            raise RetryableError(f"target {self.name} answered {response.status_code} without JSON") from exc
        if _transient(response.status_code):
            raise RetryableError(f"target {self.name} answered {response.status_code}: {answer.get('error', '')}")
        if response.status_code >= 400:
            raise PermanentDeliveryError(
                f"target {self.name} refused the batch ({response.status_code}): {answer.get('error', '')}")
        by_key = {r.get("idempotency_key"): r for r in answer.get("results", [])}
        results = []
        for e in batch:
            r = by_key.get(e.idempotency_key)
            if r is None:
                results.append(PushResult(e.event_id, False, error="no result for this event"))
                continue
            status = int(r.get("status", 200))
            if status < 300 or status == 409:
                results.append(PushResult(e.event_id, True, receipt=r.get("receipt")))
            else:
                reason = str(r.get("reason") or r.get("error") or f"status {status}")
                results.append(PushResult(e.event_id, False, error=f"{status}: {reason}",
                                          permanent=not _transient(status)))
        return results

    def close(self) -> None:
        """Close the HTTP session's connections."""
        self.session.close()
