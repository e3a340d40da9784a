"""Fixtures for the EDRMS link (the hub they build is in tests/support/edrms.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.store.db import Store
from tests.support.edrms import EdrmsHub, make_edrms_hub


@pytest.fixture
def edrms_hub(store: Store, tmp_path: Path) -> Iterator[EdrmsHub]:
    """The hub, a simulator with the change log on, and the documents of :func:`seed_documents`."""
    yield from make_edrms_hub(store, tmp_path)
