"""Gazetteer fixtures: a tiny hand-written gazetteer and a simulated town, on disk and loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from gazetteer.load import load_file
from gazetteer.simulator import generate_town, write_cou, write_full
from hub.store.db import Store
from tests.support.gazetteer import TownFiles, tiny_records, write_dtf


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    """The tiny gazetteer as a full supply."""
    return write_dtf(tmp_path / "tiny-full.csv", "F", tiny_records())


@pytest.fixture
def tiny_store(store: Store, tiny_file: Path) -> Store:
    """A store holding the tiny gazetteer."""
    load_file(store, tiny_file)
    return store


@pytest.fixture
def town_files(tmp_path: Path) -> TownFiles:
    """A 600-property synthetic town, its full supply and its COU."""
    town = generate_town(600, seed=5)
    full = write_full(town, tmp_path / "llpg-001-full.csv")
    summary = write_cou(town, tmp_path / "llpg-002-cou.csv")
    return TownFiles(town, full, tmp_path / "llpg-002-cou.csv", summary)
