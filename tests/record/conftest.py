"""Fixtures for the shared-record tests (the app and its helpers are in tests/support/record_hub.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.store.db import Store
from tests.support.record_hub import Hub, make_hub


@pytest.fixture
def hub(store: Store, tmp_path: Path) -> Iterator[Hub]:
    """The app over the named people and 20 random ones."""
    yield from make_hub(store, tmp_path, 20)
