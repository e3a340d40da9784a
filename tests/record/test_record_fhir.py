"""The FHIR R4 facade: metadata, Patient search, reads, $everything, paging, and a validation sweep."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from hub.fhir import ADDRESS_KEY_EXT, NHS_NUMBER, NHS_STATUS_EXT, VALUE_SETS
from hub.store.db import Store
from tests.support.record_hub import DOCTOR, Hub, make_hub
from tests.support.synthetic import nhs_number

MODULES = {"Patient": "patient", "RelatedPerson": "relatedperson", "EpisodeOfCare": "episodeofcare",
           "CarePlan": "careplan", "Encounter": "encounter", "Flag": "flag", "Consent": "consent",
           "DocumentReference": "documentreference", "AuditEvent": "auditevent", "Bundle": "bundle",
           "CapabilityStatement": "capabilitystatement", "OperationOutcome": "operationoutcome", "Task": "task"}


def validate(resource: dict[str, Any]) -> None:
    """Parse with the R4B model, and check every code the hub chooses against its value set."""
    rtype = resource["resourceType"]
    cls = getattr(importlib.import_module(f"fhir.resources.R4B.{MODULES[rtype]}"), rtype)
    cls.model_validate(resource)
    checks = {
        "Patient": [("administrative-gender", resource.get("gender"))],
        "EpisodeOfCare": [("episode-of-care-status", resource.get("status"))],
        "Encounter": [("encounter-status", resource.get("status")),
                      ("encounter-class", resource.get("class", {}).get("code"))],
        "CarePlan": [("request-status", resource.get("status")), ("care-plan-intent", resource.get("intent"))],
        "Flag": [("flag-status", resource.get("status"))],
        "Task": [("task-status", resource.get("status"))],
        "Consent": [("consent-state-codes", resource.get("status"))],
        "DocumentReference": [("document-reference-status", resource.get("status"))],
        "AuditEvent": [("audit-event-action", resource.get("action")),
                       ("audit-event-outcome", resource.get("outcome"))],
    }.get(rtype, [])
    for value_set, code in checks:
        assert code in VALUE_SETS[value_set], (rtype, value_set, code)
    for address in resource.get("address", []):
        assert address.get("use") in VALUE_SETS["address-use"]
    for name in resource.get("name", []) if rtype == "Patient" else []:
        assert name.get("use") in VALUE_SETS["name-use"]


def entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", [])]


def follow(hub: Hub, url: str, headers: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Every page of a search, following next links."""
    next_url: str | None = url
    while next_url:
        page = hub.client.get(next_url, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        Bundle.model_validate(body)
        yield body
        next_url = next((link["url"] for link in body["link"] if link["relation"] == "next"), None)


def test_metadata_is_an_r4_capability_statement(hub: Hub) -> None:
    body = hub.client.get("/fhir/metadata").json()
    validate(body)
    assert body["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert {"Patient", "Encounter", "AuditEvent", "DocumentReference", "Consent", "Flag"} <= types


def test_patient_search_parameters(hub: Hub) -> None:
    h = hub.headers(*DOCTOR)
    ann = hub.people["ann"]

    def found(**params: str) -> list[str]:
        r = hub.client.get("/fhir/Patient", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [p["id"] for p in entries(r.json())]

    assert found(identifier=f"{NHS_NUMBER}|{nhs_number(1)}") == [ann]
    assert found(identifier=nhs_number(1)) == [ann]
    assert found(identifier="https://carehub.example.gov.uk/Id/council_test|C-1001") == [ann]
    assert found(identifier="C-1001") == [ann]
    assert found(identifier="https://elsewhere.example/ids|C-1001") == []
    assert ann in found(family="hale", given="ann")
    assert ann in found(name="ann")
    assert found(family="hale", birthdate="1950-02-01") == [ann]
    assert ann in found(**{"address-postalcode": "ls1 4ap"})
    assert found(_id=ann) == [ann]
    bad = hub.client.get("/fhir/Patient", params={"birthdate": "soon"}, headers=h)
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    assert hub.client.get("/fhir/Patient", headers=h).status_code == 400


def test_patient_carries_uk_core_extensions(hub: Hub) -> None:
    patient = hub.client.get(f"/fhir/Patient/{hub.people['ann']}", headers=hub.headers(*DOCTOR)).json()
    validate(patient)
    nhs = next(i for i in patient["identifier"] if i["system"] == NHS_NUMBER)
    status = nhs["extension"][0]
    assert status["url"] == NHS_STATUS_EXT and status["valueCodeableConcept"]["coding"][0]["code"] == "01"
    key = patient["address"][0]["extension"][0]
    assert key["url"] == ADDRESS_KEY_EXT
    assert {e["url"]: e.get("valueString") for e in key["extension"]}["value"] == "72045678"


def test_everything_returns_episodes_plans_encounters_flags_and_documents(hub: Hub) -> None:
    ann = hub.people["ann"]
    body = hub.client.get(f"/fhir/Patient/{ann}/$everything", headers=hub.headers(*DOCTOR)).json()
    Bundle.model_validate(body)
    types = sorted({r["resourceType"] for r in entries(body)})
    assert types == ["CarePlan", "DocumentReference", "Encounter", "EpisodeOfCare", "Flag", "Patient"]
    for resource in entries(body):
        validate(resource)
    # an episode's team: the council's code as an identifier, its name (reference data) as the display
    policy = hub.client.app.state.policy  # type: ignore[attr-defined]
    teams = [r["team"][0] for r in entries(body) if r["resourceType"] == "EpisodeOfCare" and r.get("team")]
    assert teams
    for team in teams:
        assert team["identifier"]["system"].endswith("/team")
        assert team["display"] == policy.team_name(team["identifier"]["value"]) != team["identifier"]["value"]
    # paged one at a time, the same entries in the same order
    paged = [r["id"] for page in follow(hub, f"/fhir/Patient/{ann}/$everything?_count=1", hub.headers(*DOCTOR))
             for r in entries(page)]
    assert paged == [r["id"] for r in entries(body)]


def test_resource_reads_searches_and_include(hub: Hub) -> None:
    ann = hub.people["ann"]
    h = hub.headers(*DOCTOR)
    search = hub.client.get("/fhir/Encounter", params={"patient": ann, "_include": "Encounter:patient"}, headers=h)
    body = search.json()
    modes = [(e["resource"]["resourceType"], e["search"]["mode"]) for e in body["entry"]]
    assert modes == [("Encounter", "match"), ("Patient", "include")]
    encounter_id = body["entry"][0]["resource"]["id"]
    read = hub.client.get(f"/fhir/Encounter/{encounter_id}", headers=h)
    assert read.status_code == 200 and read.json()["id"] == encounter_id
    assert hub.client.get("/fhir/Encounter/nope", headers=h).status_code == 404
    assert hub.client.get("/fhir/Observation", params={"patient": ann}, headers=h).status_code == 404
    assert hub.client.get("/fhir/Encounter", headers=h).status_code == 400
    by_id = hub.client.get("/fhir/Encounter", params={"_id": encounter_id}, headers=h).json()
    assert [r["id"] for r in entries(by_id)] == [encounter_id]


def test_patient_paging_never_drops_or_repeats(hub: Hub) -> None:
    h = hub.headers(*DOCTOR)
    everyone = [r["id"] for page in follow(hub, "/fhir/Patient?address-postalcode=LS1&_count=500", h)
                for r in entries(page)]
    paged = [r["id"] for page in follow(hub, "/fhir/Patient?address-postalcode=LS1&_count=2", h)
             for r in entries(page)]
    assert len(everyone) >= 3 and paged == everyone and len(set(paged)) == len(paged)


@pytest.fixture
def demo_like(store: Store, tmp_path: Path) -> Iterator[Hub]:
    """A larger, demo-like dataset: the named people and 300 random ones."""
    yield from make_hub(store, tmp_path, 300)


def test_every_emitted_resource_of_a_demo_like_dataset_validates(demo_like: Hub) -> None:
    hub = demo_like
    reason = {"X-Break-Glass": "Validation sweep of every emitted resource"}
    h = hub.headers("tw.ali", "transitions_worker", "TRANS", **reason)
    doctor = hub.headers(*DOCTOR, **reason)
    seen: dict[str, int] = {}
    ids = [r["id"] for outward in ("LS1", "LS6", "LS9", "LS11", "LS17", "LS28")
           for page in follow(hub, f"/fhir/Patient?address-postalcode={outward}&_count=200", doctor)
           for r in entries(page)]
    for pid in sorted(set(ids) | set(hub.people.values())):
        for who in (doctor, h):
            bundle = hub.client.get(f"/fhir/Patient/{pid}/$everything", headers=who)
            assert bundle.status_code == 200, bundle.text
            for resource in entries(bundle.json()):
                validate(resource)
                seen[resource["resourceType"]] = seen.get(resource["resourceType"], 0) + 1
    audit = hub.headers("ig.morgan", "auditor")
    for page in follow(hub, "/fhir/AuditEvent?_count=200", audit):
        for resource in entries(page):
            validate(resource)
            seen["AuditEvent"] = seen.get("AuditEvent", 0) + 1
    assert set(seen) == {"Patient", "RelatedPerson", "EpisodeOfCare", "CarePlan", "Encounter", "Flag", "Consent",
                         "DocumentReference", "AuditEvent", "Task"}
    assert seen["Patient"] >= 2 * 300
