"""The health link's test hub (an MLLP listener on an ephemeral port, the store behind it, the app) and
reading the ACKs it answers with."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from health_link.mllp import MllpClient, RunningListener
from hub.store.db import Store


@dataclass
class HealthHub:
    """The listener, the store behind it, and the app that shows the record."""

    store: Store
    listener: RunningListener
    client: TestClient

    def connect(self) -> MllpClient:
        """A new MLLP connection to the listener."""
        return MllpClient("127.0.0.1", self.listener.port, timeout=60)

    def headers(self, user: str = "dr.patel", role: str = "clinician", team: str | None = "ICT-1") -> dict[str, str]:
        """A bearer token from the demo issuer."""
        token = self.client.app.state.demo_issuer.issue(user, role, team, ttl=600)  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {token}"}

    def fhir(self, path: str, **params: str) -> dict:  # type: ignore[type-arg]
        """GET /fhir/<path> as a clinician; the JSON (asserting 200)."""
        response = self.client.get(f"/fhir/{path}", params=params, headers=self.headers())
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def msa(ack: str) -> list[str]:
    """The MSA fields of an ACK."""
    return next(s for s in ack.split("\r") if s.startswith("MSA")).split("|")


def err(ack: str) -> str:
    """The ERR segment of an ACK ('' when none)."""
    return next((s for s in ack.split("\r") if s.startswith("ERR")), "")
