"""Fixtures for the finance link (the hub they build is in tests/support/finance.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from finance_link.mapping import load_mapping
from finance_link.simulator import FinanceSimulator
from hub.api.app import create_app
from hub.settings import Settings, WorkerSettings
from hub.store.db import Store
from tests.support.finance import Council, FinanceHub
from tests.support.pages import serve


@pytest.fixture
def fin(store: Store, tmp_path: Path) -> Iterator[FinanceHub]:
    """The finance hub around an empty store."""
    settings = Settings(database_url=store.url, data_dir=tmp_path / "var", sources={},
                        worker=WorkerSettings(poll_seconds=0.05, lease_seconds=5))
    erp = FinanceSimulator(mapping=load_mapping(settings)).start()
    app = create_app(settings, store)
    with TestClient(app) as client:
        for url in serve(app):
            hub = FinanceHub(store, settings, url, client, erp, Council(store))
            yield hub
            for loop in hub.loops:
                loop.close()
    erp.stop()
