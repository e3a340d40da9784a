"""Metadata back to the EDRMS: a delivery target that writes a linked document's properties.

Subscribed to ``DocumentLink`` change events (config/subscriptions.toml). For each event it writes the
person id, case id, record class, review date and legal hold onto the document, through
:meth:`edrms.cmis.Repository.set_properties` (the change token quoted; on a conflict the document is
read again and the write retried). It is idempotent by content: when the document already holds the
values - written by an earlier try whose answer was lost, or by a later event - nothing is sent, so a
retried push writes once. A document linked to no one gets its review date and hold cleared; the
identifiers the EDRMS holds are left for records managers to correct there.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from edrms.cmis import CmisConflict, CmisObject, Credentials, Repository, connect
from edrms.records import SOURCE
from hub.contract import ChangeEvent, PushResult
from hub.delivery.config import TargetSettings
from hub.errors import HubError, NotFound, RetryableError
from hub.settings import EdrmsSettings, get_settings


def open_repository(settings: EdrmsSettings) -> Repository:
    """Connect to the configured repository with its credentials."""
    credentials = Credentials(
        user=settings.user, password=settings.password.get_secret_value() if settings.password else None,
        token=settings.token.get_secret_value() if settings.token else None)
    return connect(settings.service_url, credentials, repository_id=settings.repository_id,
                   timeout=settings.timeout_seconds)


def wanted_properties(payload: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The properties a DocumentLink event asks the EDRMS to hold."""
    holds = payload.get("legal_holds") or []
    review = payload.get("retain_until")
    values: dict[str, Any] = {"retention_date": date.fromisoformat(review) if review else None,
                              "legal_hold": bool(holds) if payload.get("person_id") else None}
    if payload.get("person_id"):
        values.update(person_id=payload["person_id"], case_id=payload.get("episode_id"),
                      record_class=payload.get("record_class"))
    return {names[key]: value for key, value in values.items() if key in names}


def _same(have: Any, want: Any) -> bool:
    if isinstance(want, date) and not isinstance(want, datetime):
        return isinstance(have, datetime) and have.date() == want or have == want.isoformat()
    if isinstance(want, bool) and isinstance(have, str):
        return have.lower() == str(want).lower()
    return have == want or (have in (None, "") and want in (None, ""))


def holds_already(obj: CmisObject, wanted: dict[str, Any]) -> bool:
    """True when the document holds every wanted value."""
    return all(_same(obj.properties.get(key), value) for key, value in wanted.items())


class EdrmsTarget:
    """Writes linked documents' properties back to the EDRMS named by ``[edrms]`` in the hub's settings."""

    def __init__(self, name: str, settings: TargetSettings) -> None:
        self.name = name
        self.settings = get_settings().edrms
        self.repository: Repository | None = None

    def _repo(self) -> Repository:
        if self.repository is None:
            self.repository = open_repository(self.settings)
        return self.repository

    def push(self, batch: list[ChangeEvent]) -> list[PushResult]:
        """Write each event's properties (the latest event per document wins; earlier ones are accepted)."""
        results: list[PushResult] = []
        latest: dict[str, int] = {}
        for n, event in enumerate(batch):
            if event.entity_type == "DocumentLink" and event.payload.get("document_id"):
                latest[str(event.payload["document_id"])] = n
        for n, event in enumerate(batch):
            object_id = str(event.payload.get("document_id") or "")
            if event.source != SOURCE:  # a document link another system told the hub about
                results.append(PushResult(event.event_id, True, receipt="not from the EDRMS"))
                continue
            if not object_id or latest.get(object_id) != n:
                results.append(PushResult(event.event_id, True, receipt="superseded in batch"))
                continue
            results.append(self._write(event, object_id))
        return results

    def _write(self, event: ChangeEvent, object_id: str) -> PushResult:
        wanted = wanted_properties(event.payload, self.settings.properties)
        try:
            repo = self._repo()
            written = repo.set_properties(object_id, wanted, unchanged=lambda obj: holds_already(obj, wanted))
        except NotFound:
            return PushResult(event.event_id, False, error=f"document {object_id} is not in the EDRMS",
                              permanent=True)
        except CmisConflict as exc:  # it kept changing under us: try again later
            return PushResult(event.event_id, False, error=exc.message)
        except RetryableError:
            raise
        except HubError as exc:
            return PushResult(event.event_id, False, error=exc.message, permanent=True)
        receipt = "unchanged" if written is None else f"{object_id}@{written.change_token}"
        return PushResult(event.event_id, True, receipt=receipt)

    def close(self) -> None:
        """Release connections."""
        if self.repository is not None:
            self.repository.close()
            self.repository = None
