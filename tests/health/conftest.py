"""Fixtures for the health link: a store, a real MLLP listener on an ephemeral port, and the hub's app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from health_link.adt import AdtFeed
from health_link.mllp import MllpClient, MllpListener, RunningListener
from hub.api.app import create_app
from hub.registry import build_pipeline
from hub.settings import Settings
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


@pytest.fixture
def health(store: Store, tmp_path: Path) -> Iterator[HealthHub]:
    """A listener applying ADT to ``store`` and the hub's app over the same store."""
    settings = Settings(database_url=store.url, data_dir=tmp_path / "var")
    running = RunningListener(MllpListener(store, AdtFeed(build_pipeline(settings, store))))
    try:
        with TestClient(create_app(settings, store)) as client:
            yield HealthHub(store, running, client)
    finally:
        running.stop()
