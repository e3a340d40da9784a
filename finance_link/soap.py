"""The SOAP push: a zeep client for the commitments WSDL and the delivery target that uses it.

``FinanceClient.send`` is the one place zeep, requests and the finance system's
faults become hub errors: a transient failure (connection refused, timeout, HTTP
5xx or 429, a ServiceUnavailableFault) is :class:`FinanceUnavailable`, retried by
delivery with backoff; a refusal (UnknownSupplier, ClosedPeriod, InvalidCostCentre,
a schema or business Client fault) is :class:`FinanceRefused`, a dead letter
carrying the finance system's reason and replayable after the fix.

``FinanceTarget`` is the delivery target (``[targets.finance]`` in
``config/subscriptions.toml``) for ``CommitmentLine`` change events: each version
goes as CreateCommitment, AmendCommitment or CloseCommitment, its idempotency key
being line id + version, so a retried push is recognised and never committed twice.
Every push and fault is written to the audit trail when the target is given the
store (``options.audit_store = "{database_url}"``).
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport

from finance_link.auditing import SystemAudit, audit_system
from hub.contract import ChangeEvent, PushResult
from hub.delivery.config import TargetSettings
from hub.errors import ConfigError, PermanentDeliveryError, SourceUnavailable
from hub.store.db import Store

log = logging.getLogger("carehub.finance.soap")

WSDL = Path(__file__).resolve().parent / "wsdl" / "commitments.wsdl"
BINDING = "{urn:carehub:finance:commitments:1}CommitmentBinding"
OPERATION = {"create": "CreateCommitment", "amend": "AmendCommitment", "close": "CloseCommitment",
             "reverse": "CloseCommitment"}
TRANSIENT_FAULTS = {"ServiceUnavailableFault"}


class FinanceUnavailable(SourceUnavailable):
    """The finance system could not take the commitment now (down, slow, busy): try again later."""

    code = "CAREHUB-E211"


class FinanceRefused(PermanentDeliveryError):
    """The finance system refused the commitment for good; ``fault`` names its fault, ``message`` its reason."""

    code = "CAREHUB-E411"

    def __init__(self, message: str, *, fault: str = "Client") -> None:
        super().__init__(message)
        self.fault = fault


def request_of(item: dict[str, Any]) -> dict[str, Any]:
    """A feed item (a commitment version) as the WSDL's CommitmentLine."""
    body: dict[str, Any] = {
        "IdempotencyKey": f"{item['line_id']}:{item['version']}", "LineId": item["line_id"],
        "Version": item["version"], "Action": item["action"], "Reason": item["reason"],
        "PersonRef": item["person_id"], "CarePlanRef": item.get("care_plan_id"),
        "ServiceType": item["service_type"][:16], "SupplierNumber": item.get("supplier_number") or "",
        "SupplierSite": item.get("supplier_site") or "", "CostCentre": item["cost_centre"],
        "Subjective": item["subjective"], "CostPeriod": item["cost_period"],
        "UnitCost": Decimal(item["unit_cost"]), "UnitsPerWeek": Decimal(item["units_per_week"]),
        "WeeklyAmount": Decimal(item["weekly_amount"]), "VatTreatment": item["vat_treatment"],
        "VatWeeklyAmount": Decimal(item["vat_weekly_amount"]),
        "ClientContributionWeekly": Decimal(item["client_contribution_weekly"]),
        "TotalAmount": Decimal(item["total_amount"]), "DeltaWeeklyAmount": Decimal(item["delta_weekly_amount"]),
        "DeltaTotalAmount": Decimal(item["delta_total_amount"]), "StartDate": date.fromisoformat(item["start"]),
        "EndDate": date.fromisoformat(item["end"]) if item.get("end") else None,
        "ApprovedOn": date.fromisoformat(item["approved_on"]) if item.get("approved_on") else None,
    }
    return {k: v for k, v in body.items() if v is not None}


class FinanceClient:
    """A zeep client of the commitments service at ``url`` (the WSDL is the repository's own)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.session = requests.Session()
        # The address is configured; proxies from the environment are not looked up on every call.
        self.session.trust_env = False
        transport = Transport(session=self.session, timeout=timeout, operation_timeout=timeout)
        self.client = zeep.Client(str(WSDL), transport=transport)
        self.service = self.client.create_service(BINDING, url)

    def send(self, item: dict[str, Any]) -> tuple[str, bool]:
        """Push one commitment version; its receipt (commitment number, duplicate). Raises FinanceUnavailable
        or FinanceRefused: the one boundary where zeep's and requests' errors become hub errors."""
        if not (item.get("supplier_number") and item.get("supplier_site")):
            # Nothing the ERP could accept: say what reference data is missing, before any request is made.
            raise FinanceRefused(f"provider {item.get('provider_code') or '(none)'} has no ERP supplier number and "
                                 "site: add it to [suppliers] in config/finance.toml, then replay", fault="NoSupplier")
        operation = getattr(self.service, OPERATION[item["action"]])
        try:
            receipt = operation(**request_of(item))
        except zeep.exceptions.Fault as exc:
            raise _fault_error(exc) from exc
        except zeep.exceptions.TransportError as exc:
            if exc.status_code >= 500 or exc.status_code == 429:
                raise FinanceUnavailable(f"finance system answered HTTP {exc.status_code}") from exc
            raise FinanceRefused(f"finance system answered HTTP {exc.status_code}", fault="HTTP") from exc
        except requests.RequestException as exc:
            raise FinanceUnavailable(f"finance system unreachable: {type(exc).__name__}") from exc
        except (zeep.exceptions.ValidationError, ValueError, TypeError) as exc:
            raise FinanceRefused(f"the commitment does not fit the WSDL: {exc}", fault="Validation") from exc
        return str(receipt.CommitmentNumber), bool(receipt.Duplicate)

    def close(self) -> None:
        """Release the HTTP connections."""
        self.session.close()


def _fault_error(exc: zeep.exceptions.Fault) -> FinanceUnavailable | FinanceRefused:
    name = "Client" if (exc.code or "").endswith("Client") else "Server"
    reason = exc.message or "fault without a reason"
    if exc.detail is not None and len(exc.detail):
        typed = exc.detail[0]
        name = typed.tag.rsplit("}", 1)[-1]
        found = typed.find("{urn:carehub:finance:commitments:1}Reason")
        if found is not None and found.text:
            reason = found.text
    if name in TRANSIENT_FAULTS:
        return FinanceUnavailable(f"{name}: {reason}")
    return FinanceRefused(f"{name}: {reason}", fault=name)


class FinanceTarget:
    """Delivery target: pushes ``CommitmentLine`` versions to the finance system by SOAP, in order."""

    def __init__(self, name: str, settings: TargetSettings) -> None:
        self.name = name
        url = settings.options.get("url")
        if not url:
            raise ConfigError(f"target {name!r} needs options.url (the commitments service address)")
        self.client = FinanceClient(str(url), timeout=settings.timeout_seconds)
        audit_url = settings.options.get("audit_store")
        self.audit_store = Store(str(audit_url)) if audit_url else None

    def push(self, batch: list[ChangeEvent]) -> list[PushResult]:
        """Send each version in order. A transient failure before anything went raises (the batch is retried);
        after some went, the rest are answered not accepted (retried). A refusal is that event's dead letter."""
        results: list[PushResult] = []
        audits: list[tuple[ChangeEvent, str, int, str | None]] = []
        try:
            for event in batch:
                try:
                    number, duplicate = self.client.send(event.payload)
                except FinanceRefused as exc:
                    results.append(PushResult(event.event_id, accepted=False, permanent=True, error=exc.message))
                    audits.append((event, "invalid", 422, exc.message))
                    continue
                except FinanceUnavailable as exc:
                    audits.append((event, "error", 503, exc.message))
                    if not results:
                        raise
                    results += [PushResult(e.event_id, accepted=False, error=exc.message)
                                for e in batch[len(results):]]
                    break
                receipt = f"{number} (duplicate)" if duplicate else number
                results.append(PushResult(event.event_id, accepted=True, receipt=receipt))
                audits.append((event, "success", 200, "duplicate: already committed" if duplicate else None))
        finally:
            self._audit(audits)
        return results

    def _audit(self, pushes: list[tuple[ChangeEvent, str, int, str | None]]) -> None:
        """One audit row per push or fault: which line version, what the finance system said (never names)."""
        if self.audit_store is None or not pushes:
            return
        entries = [SystemAudit(
            "SOAP", f"finance:{OPERATION.get(event.payload.get('action', ''), '')}", f"system:{self.name}", "write",
            outcome, reason, [f"CommitmentLine/{event.entity_id}/_version/{event.version}"],
            [event.person_id] if event.person_id else [], status) for event, outcome, status, reason in pushes]
        with self.audit_store.session() as session:
            audit_system(session, entries)

    def close(self) -> None:
        """Release connections."""
        self.client.close()
        if self.audit_store is not None:
            self.audit_store.dispose()
