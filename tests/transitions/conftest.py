"""Shared pieces of the transitions tests: the two case systems on loopback, a hub synced from the children's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from adapters.rest import RestSource
from adapters.simulators.adults_case import AdultsCaseSystem
from adapters.simulators.childrens_case import ChildrensCaseSystem
from hub.settings import SourceSettings

TODAY = date.today()


def born(years: int, days: int = 0) -> date:
    """A birth date making someone ``years`` old (and ``days`` more) today."""
    return date(TODAY.year - years, TODAY.month, min(TODAY.day, 28)) - timedelta(days=days)


def rest_source(sim: ChildrensCaseSystem | AdultsCaseSystem, name: str, mapping: str) -> RestSource:
    """A REST source reading a simulator with OAuth2 client credentials."""
    return RestSource(name, SourceSettings(adapter="adapters.rest:RestSource", mapping=mapping, options={
        "base_url": sim.base_url, "auth": "oauth2", "token_url": sim.token_url, "client_id": sim.client_id,
        "client_secret": sim.client_secret, "paging": "cursor", "sorted": True, "page_size": 50,
        "backoff_seconds": 0.01}))


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
