"""The transitions tests' pieces: birth dates relative to today, a REST source on a case-system simulator,
the hub person behind a child, and the delivery loop that makes the adult referral."""

from __future__ import annotations

import threading
from datetime import date, timedelta

from sqlalchemy import select

from adapters.rest import RestSource
from adapters.simulators.adults_case import AdultsCaseSystem
from adapters.simulators.childrens_case import ChildrensCaseSystem
from hub.delivery.config import DeliveryConfig
from hub.delivery.worker import DeliveryLoop, ensure_circuits
from hub.settings import SourceSettings
from hub.status import delivery_status
from hub.store.db import Store
from hub.store.tables import PersonIdentifier
from tests.support.delivery import hub_settings

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


def hub_person(store: Store, children_id: str) -> str:
    """The golden person synced from the children's system's person ``children_id``."""
    with store.session() as s:
        return str(s.scalar(select(PersonIdentifier.person_id).where(PersonIdentifier.system == "childrens_case",
                                                                     PersonIdentifier.value == children_id)))


def intake_loop(store: Store, adults: AdultsCaseSystem) -> DeliveryLoop:
    """A delivery loop pushing Transition events to the adults' system's intake, retrying quickly."""
    config = DeliveryConfig.model_validate({
        "targets": {"adults_case": {
            "adapter": "adapters.adults_case:TransitionIntake", "retry": {"base_seconds": 0.01, "max_seconds": 0.05},
            "circuit": {"failure_threshold": 100},
            "options": {"base_url": adults.base_url, "auth": "oauth2", "token_url": adults.token_url,
                        "client_id": adults.client_id, "client_secret": adults.client_secret, "retries": 0}}},
        "subscriptions": [{"target": "adults_case", "entity_types": ["Transition"]}]})
    ensure_circuits(store, ["adults_case"])
    return DeliveryLoop(store, hub_settings(store.url), config, "test-worker", threading.Event())


def delivered(store: Store) -> int:
    """Events delivered to the adults' system."""
    with store.session() as s:
        return int(delivery_status(s).get("adults_case", {}).get("delivered", 0))
