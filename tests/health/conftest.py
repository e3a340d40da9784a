"""Fixtures for the health link: a real MLLP listener on an ephemeral port and the hub's app over a store
(tests/support/health.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from health_link.adt import AdtFeed
from health_link.mllp import MllpListener, RunningListener
from hub.api.app import create_app
from hub.registry import build_pipeline
from hub.settings import Settings
from hub.store.db import Store
from tests.support.health import HealthHub


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
