"""The finance link's test hub: a council's care plans and services through the real pipeline, the hub served
on a loopback port, the ERP simulator (SOAP) and in-process delivery loops pushing to it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests
from fastapi.testclient import TestClient

from finance_link.simulator import FinanceSimulator
from hub.contract import MappedRecord, SourceRecord
from hub.delivery.config import DeliveryConfig
from hub.delivery.worker import DeliveryLoop, ensure_circuits
from hub.pipeline import BatchResult, Pipeline
from hub.settings import Settings
from hub.store.db import Store
from tests.support.delivery import drain
from tests.support.synthetic import nhs_number, person_payload

SOURCE = "council_fin"
STREAMS = {"people": "Person", "referrals": "Referral", "plans": "CarePlan", "services": "Commitment"}
MANAGER = "Dana Fox"  # a synthetic team manager: approver of the plans


def mapper(record: SourceRecord) -> MappedRecord:
    """The payload is the document; ``person`` and ``plan`` name source ids the pipeline resolves."""
    doc = dict(record.payload)
    refs: dict[str, tuple[str, str]] = {}
    if person := doc.pop("person", None):
        refs["person_id"] = ("people", person)
    if plan := doc.pop("plan", None):
        refs["care_plan_id"] = ("plans", plan)
    return MappedRecord(STREAMS[record.stream], doc, refs)


def plan_doc(person: str, *, status: str = "approved", area: str = "adults", end: str | None = None
             ) -> dict[str, Any]:
    """An approved support plan."""
    doc: dict[str, Any] = {"person": person, "service_area": area, "kind": "support_plan", "start": "2026-01-05",
                           "status": status, "approved_by": MANAGER, "approved_on": "2026-01-04"}
    if end:
        doc["end"] = end
    return doc


def service_doc(person: str, plan: str, **changes: Any) -> dict[str, Any]:
    """An approved home care service: 10 hours a week at 21.50 from P0001, 25.00 a week contribution."""
    doc: dict[str, Any] = {
        "person": person, "plan": plan, "service_type": "home_care", "provider_id": "P0001",
        "unit_cost": "21.50", "unit": "hour", "units_per_week": "10", "start": "2026-01-05",
        "status": "approved", "approved_by": MANAGER, "approved_on": "2026-01-04",
        "client_contribution_weekly": "25.00",
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


@dataclass
class Council:
    """The synthetic council's source: ingest records (new or changed) through the real pipeline."""

    store: Store
    pipeline: Pipeline = field(default_factory=Pipeline)
    serial: int = 0

    def ingest(self, stream: str, source_id: str, payload: dict[str, Any]) -> BatchResult:
        self.serial += 1
        record = SourceRecord(stream, source_id, payload, modified=f"2026-02-01T00:{self.serial // 60:02d}:"
                                                                    f"{self.serial % 60:02d}")
        with self.store.session() as session:
            return self.pipeline.ingest(session, SOURCE, [record], mapper)

    def person(self, key: str, n: int) -> None:
        """A person with an adults' referral for physical support (the cost centre's support reason)."""
        self.ingest("people", key, person_payload("Ann", "Hale", date(1950, 2, 1), "female", nhs_number(n), "01",
                                                  "LS1 4AP", f"F-{n}"))
        self.ingest("referrals", f"ref-{key}", {"person": key, "service_area": "adults", "received": "2025-12-01",
                                                "reason": "PHY"})


def finance_config(url: str, database_url: str, **retry: Any) -> DeliveryConfig:
    """Subscriptions with the finance target only, pointing at the simulator, quick retries."""
    return DeliveryConfig.model_validate({
        "targets": {"finance": {
            "adapter": "finance_link.soap:FinanceTarget", "batch_size": 50, "timeout_seconds": 5,
            "options": {"url": url, "audit_store": database_url},
            "retry": {"max_attempts": 20, "base_seconds": 0.05, "max_seconds": 0.2, **retry},
            "circuit": {"failure_threshold": 50, "cooldown_seconds": 0.2},
        }},
        "subscriptions": [{"target": "finance", "entity_types": ["CommitmentLine"]}],
    })


@dataclass
class FinanceHub:
    """The hub on a loopback port, its store and settings, the ERP simulator and a delivery loop."""

    store: Store
    settings: Settings
    url: str
    client: TestClient
    erp: FinanceSimulator
    council: Council
    loops: list[DeliveryLoop] = field(default_factory=list)

    def token(self, user: str = "fin.jones", role: str = "finance_officer") -> str:
        return self.client.app.state.demo_issuer.issue(user, role, None, ttl=600)  # type: ignore[attr-defined]

    def get(self, path: str, role: str = "finance_officer", **params: Any) -> requests.Response:
        return requests.get(self.url + path, params=params, timeout=30,
                            headers={"Authorization": f"Bearer {self.token(role=role)}"})

    def loop(self) -> DeliveryLoop:
        config = finance_config(self.erp.url, self.store.url)
        ensure_circuits(self.store, config.enabled_targets())
        loop = DeliveryLoop(self.store, self.settings, config, "test-worker", threading.Event())
        self.loops.append(loop)
        return loop

    def drain(self, done: Callable[[], bool], timeout: float = 30) -> None:
        """Run the newest delivery loop (a new one when there is none) until ``done()``."""
        drain(self.loops[-1] if self.loops else self.loop(), done, timeout=timeout,
              what=lambda: f"delivery to the ERP ({self.erp.stats()})")
