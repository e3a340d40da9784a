"""The EDRMS link's test hub: the synthetic people (through the real pipeline), a CMIS simulator on loopback
holding documents about them, the app, and the pull wired to both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from edrms.cmis import Credentials, connect
from edrms.pull import DocumentPull, PullResult
from edrms.retention import Schedule
from edrms.simulator import CmisSimulator, Repository, StoredObject
from hub.api.app import create_app
from hub.settings import EdrmsSettings, Settings
from hub.store.db import Store
from hub.store.tables import Entity, SourceLink
from tests.support.record_hub import hub_ids
from tests.support.synthetic import Dataset, add_named, add_random, nhs_number

USER, PASSWORD = "carehub", "s3cret-synthetic"


@dataclass
class EdrmsHub:
    """The store with people, the simulator with documents, the app, and what the tests look things up by."""

    store: Store
    simulator: CmisSimulator
    settings: Settings
    client: TestClient
    people: dict[str, str]
    episodes: dict[str, tuple[str, str]]  # name -> (hub episode id, source episode id)
    docs: dict[str, StoredObject] = field(default_factory=dict)

    @property
    def repo(self) -> Repository:
        """The simulated repository."""
        return self.simulator.repository

    def schedule(self) -> Schedule:
        """The retention schedule the hub runs."""
        return Schedule.from_settings(self.settings)

    def pull(self, **kwargs: Any) -> PullResult:
        """One scheduled pull, as the job runs it."""
        repository = connect(self.settings.edrms.service_url, Credentials(USER, PASSWORD))
        try:
            return DocumentPull(self.store, repository, self.settings.edrms, self.schedule()).run(**kwargs)
        finally:
            repository.close()

    def headers(self, user: str = "rm.clarke", role: str = "records_manager", team: str | None = None
                ) -> dict[str, str]:
        """Bearer headers from the demo issuer."""
        token = self.client.app.state.demo_issuer.issue(user, role, team, ttl=600)  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {token}"}


def episodes_of(store: Store, people: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Each named person's first case: its hub id and its source id."""
    out: dict[str, tuple[str, str]] = {}
    with store.session() as s:
        for name, pid in people.items():
            row = s.execute(select(Entity.id, SourceLink.source_id).join(SourceLink, SourceLink.entity_id == Entity.id)
                            .where(Entity.person_id == pid, Entity.entity_type == "Episode")
                            .order_by(Entity.id)).first()
            if row is not None:
                out[name] = (row[0], row[1])
    return out


def seed_documents(hub: EdrmsHub) -> None:
    """The documents the tests reason about, one per way a document can be identified (or not)."""
    repo, people = hub.repo, hub.people
    when = datetime(2024, 3, 1, 9, tzinfo=UTC)

    def add(key: str, name: str, props: dict[str, Any], minutes: int) -> None:
        hub.docs[key] = repo.add_document(name, {"sc:documentType": "letter", "sc:author": "amira.khan", **props},
                                          content=b"%PDF synthetic", created=when + timedelta(minutes=minutes))

    add("ann_nhs", "Support plan 1.pdf", {"sc:nhsNumber": nhs_number(1)}, 1)
    add("ann_case", "Review 2.pdf", {"sc:clientId": "C-1001", "sc:caseId": hub.episodes["ann"][1]}, 2)
    add("tom_id", "CIN plan 3.pdf", {"sc:personId": people["tom"], "sc:recordClass": "childrens"}, 3)
    add("sky_nhs", "LAC review 4.pdf", {"sc:nhsNumber": nhs_number(3)}, 3)  # same time as tom_id: a tie
    add("nora_none", "Letter - Nora Quinn (23/11/1978).pdf", {}, 4)
    add("wrong", "Letter 6.pdf", {"sc:clientId": "X9999999"}, 5)
    add("conflict", "Letter 7.pdf", {"sc:nhsNumber": nhs_number(1), "sc:clientId": "C-1002"}, 6)
    add("sky_none", "Note - Sky Marlow (09/07/2016).pdf", {}, 7)


def make_edrms_hub(store: Store, tmp_path: Path, *, changes: bool = True, page_limit: int = 3
                   ) -> Iterator[EdrmsHub]:
    """People in the store, documents in a simulator (pages of ``page_limit``), the app over both."""
    data = Dataset()
    named = add_named(data)
    add_random(data, 5)
    with store.session() as session:
        data.load(session)
    people = hub_ids(store, named)
    repository = Repository(page_limit=page_limit, changes=changes, credentials=(USER, PASSWORD))
    with CmisSimulator(repository) as simulator:
        settings = Settings(database_url=store.url, data_dir=tmp_path / "var", edrms=EdrmsSettings(
            enabled=True, service_url=simulator.browser_url, user=USER, password=PASSWORD,
            client_id_system="council_test", page_size=100))
        app = create_app(settings, store)
        with TestClient(app) as client:
            hub = EdrmsHub(store, simulator, settings, client, people, episodes_of(store, people))
            seed_documents(hub)
            yield hub
