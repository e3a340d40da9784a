"""FHIR R4 both ways against the simulator over real HTTP: pulls by NHS number and by _lastUpdated, pushes."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from health_link.fhir_client import FhirClient, FhirSource, FhirTarget, pull_patient
from health_link.simulator import FhirSimulator, synthetic_patient
from hub.contract import ChangeEvent, MappedRecord, SourceRecord
from hub.delivery.config import TargetSettings
from hub.errors import RetryableError
from hub.pipeline import Pipeline
from hub.settings import SourceSettings
from hub.store.db import Store
from hub.store.tables import Entity, PersonIndex
from hub.sync import sync_source
from tests.support.delivery import count, start_worker, worker_env
from tests.support.waiting import wait_for


@pytest.fixture
def simulator() -> Iterator[FhirSimulator]:
    with FhirSimulator() as sim:
        yield sim


def fhir_source(sim: FhirSimulator, page_size: int = 2) -> FhirSource:
    return FhirSource("health_fhir", SourceSettings(adapter="health_link.fhir_client:FhirSource", options={
        "base_url": sim.base_url, "page_size": page_size, "backoff_seconds": 0.01}))


def entities(store: Store, etype: str) -> list[dict[str, Any]]:
    with store.session() as s:
        return [json.loads(d) for d in s.scalars(select(Entity.document).where(Entity.entity_type == etype))]


def test_incremental_pull_follows_next_links_waits_out_429_and_503_and_resumes(
        store: Store, simulator: FhirSimulator) -> None:
    people = [synthetic_patient(i) for i in range(5)]
    simulator.seed(people)
    simulator.store.fail_next(429, 2)
    simulator.store.fail_next(503, 1)
    source = fhir_source(simulator)
    first = sync_source(store, source, Pipeline())
    assert (first.received, first.accepted, first.quarantined) == (10, 10, 0)
    assert sum(1 for method, path in simulator.store.requests if "_offset=" in path) >= 4  # next links followed
    persons, visits = entities(store, "Person"), entities(store, "HealthEvent")
    assert sorted(p["nhs_number"] for p in persons) == sorted(str(p.nhs_number) for p in people)
    assert all(p["nhs_number_status"] == "01" for p in persons)
    assert {v["status"] for v in visits} == {"finished"} and all(v["person_id"] for v in visits)

    moved = dict(simulator.store.resources["Patient"][next(iter(simulator.store.resources["Patient"]))])
    moved["address"] = [{"use": "home", "line": ["9 Bridge Street"], "city": "Kidwelly", "postalCode": "SA17 4AA"}]
    simulator.store.put(moved, moved["id"])
    again = sync_source(store, source, Pipeline())
    assert (again.received, again.updated) == (1, 1)
    assert any(p["addresses"][0]["text"].startswith("9 Bridge Street") for p in entities(store, "Person"))
    assert sync_source(store, source, Pipeline()).received == 0
    source.close()


def test_pull_one_person_by_nhs_number(store: Store, simulator: FhirSimulator) -> None:
    people = [synthetic_patient(i) for i in range(3)]
    simulator.seed(people, encounters_each=2)
    source = fhir_source(simulator)
    assert people[1].nhs_number is not None
    with store.session() as session:
        result = pull_patient(session, Pipeline(), source, people[1].nhs_number)
    assert (result.received, result.created) == (3, 3)
    with store.session() as s:
        assert s.scalar(select(PersonIndex.nhs_number)) == people[1].nhs_number
        assert s.scalar(select(func.count()).select_from(Entity).where(Entity.entity_type == "HealthEvent")) == 2
    source.close()


def test_the_client_gives_up_on_a_server_that_stays_busy(simulator: FhirSimulator) -> None:
    simulator.store.fail_next(503, 10)
    client = FhirClient(simulator.base_url, retries=2, backoff=0.01)
    with pytest.raises(RetryableError):
        list(client.search("Patient", {}))
    client.close()


def event(etype: str, doc: dict[str, Any], entity_id: str, version: int = 1) -> ChangeEvent:
    return ChangeEvent(event_id=f"{entity_id}-{version}", entity_type=etype, entity_id=entity_id,
                       person_id="p-1", kind="created" if version == 1 else "updated", version=version,
                       payload={"id": entity_id, "person_id": "p-1", **doc}, created_at=datetime.now(UTC))


EPISODE = {"service_area": "adults", "kind": "long_term_support", "start": "2025-01-06", "team": "ASC-OPN"}
FLAG = {"category": "safeguarding", "text": "Section 42 enquiry open", "start": "2025-02-01"}
PLAN = {"service_area": "adults", "kind": "care_plan", "start": "2025-01-20", "status": "approved",
        "approved_on": "2025-01-19", "approved_by": "Team manager"}


def test_push_sends_conditional_updates_and_a_retry_never_duplicates(simulator: FhirSimulator) -> None:
    target = FhirTarget("health_fhir", TargetSettings(adapter="health_link.fhir_client:FhirTarget", options={
        "base_url": simulator.base_url, "backoff_seconds": 0.01}))
    batch = [event("Episode", EPISODE, "e-1"), event("Flag", FLAG, "f-1"), event("CarePlan", PLAN, "c-1"),
             event("Episode", {**EPISODE, "service_area": "childrens", "kind": "CIN"}, "e-2"),
             event("Flag", {**FLAG, "category": "risk_to_staff"}, "f-2")]
    simulator.store.fail_next(503, 2)  # the push gives up on the first event: the whole batch is retried
    with pytest.raises(RetryableError):
        target.push(batch)
    first = target.push(batch)
    assert all(r.accepted for r in first)
    assert [r.receipt.split()[0] for r in first if r.receipt] == ["201", "201", "201", "not", "not"]
    again = target.push(batch)  # the same events delivered twice
    assert [r.receipt.split()[0] for r in again if r.receipt][:3] == ["200", "200", "200"]
    held = simulator.store.resources
    assert {k: len(v) for k, v in held.items() if v} == {"EpisodeOfCare": 1, "Flag": 1, "CarePlan": 1}
    episode = next(iter(held["EpisodeOfCare"].values()))
    assert episode["status"] == "active" and episode["meta"]["versionId"] == "2"
    assert episode["identifier"] == [{"system": "https://carehub.example.gov.uk/Id/episode", "value": "e-1"}]
    assert episode["patient"]["identifier"]["value"] == "p-1"
    target.close()


def test_the_outbox_delivers_through_a_worker_with_retries_and_no_duplicates(
        database_url: str, simulator: FhirSimulator, tmp_path: Path) -> None:
    store = Store(database_url)
    person = {"names": [{"family": "Hughes", "given": ["Aled"]}], "birth_date": "1950-05-05"}
    records: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "people": [("P1", person)], "episodes": [("E1", EPISODE)], "flags": [("F1", FLAG)], "plans": [("C1", PLAN)]}
    kinds = {"people": "Person", "episodes": "Episode", "flags": "Flag", "plans": "CarePlan"}

    def mapper(record: SourceRecord) -> MappedRecord:
        refs = {} if record.stream == "people" else {"person_id": ("people", "P1")}
        return MappedRecord(kinds[record.stream], dict(record.payload), refs)

    for stream, rows in records.items():
        with store.session() as session:
            Pipeline().ingest(session, "adults_case", [SourceRecord(stream, sid, doc) for sid, doc in rows], mapper)
    subscriptions = {"targets": {"health": {
        "adapter": "health_link.fhir_client:FhirTarget", "batch_size": 10, "timeout_seconds": 5,
        "options": {"base_url": simulator.base_url, "backoff_seconds": 0.01},
        "retry": {"max_attempts": 20, "base_seconds": 0.05, "max_seconds": 0.2},
        "circuit": {"failure_threshold": 50, "cooldown_seconds": 0.2}}},
        "subscriptions": [{"target": "health", "entity_types": ["Episode", "Flag", "CarePlan"]}]}
    simulator.store.fail_next(503, 6)
    worker = start_worker(worker_env(database_url, tmp_path, subscriptions), tmp_path / "worker.log")
    try:
        wait_for(lambda: count(store, "delivered") == 3, "three deliveries", timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    held = simulator.store.resources
    assert {k: len(v) for k, v in held.items() if v} == {"EpisodeOfCare": 1, "Flag": 1, "CarePlan": 1}
    plan = next(iter(held["CarePlan"].values()))
    assert plan["status"] == "active" and plan["period"]["start"] == date(2025, 1, 20).isoformat()
    store.dispose()
