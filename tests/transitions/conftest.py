"""Fixtures of the transitions tests: the two case systems on loopback (the rest is in tests/support/transitions.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.simulators.adults_case import AdultsCaseSystem
from adapters.simulators.childrens_case import ChildrensCaseSystem


@pytest.fixture
def children() -> Iterator[ChildrensCaseSystem]:
    sim = ChildrensCaseSystem().start()
    yield sim
    sim.stop()


@pytest.fixture
def adults() -> Iterator[AdultsCaseSystem]:
    sim = AdultsCaseSystem(step_seconds=3600).start()
    yield sim
    sim.stop()
