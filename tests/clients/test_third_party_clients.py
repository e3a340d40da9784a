"""The hub as third-party clients nobody here wrote speak to it, over loopback: fhirclient (SMART on FHIR),
fhirpy, python-hl7's MLLP client and hl7apy, openapi-spec-validator and jsonschema for /openapi.json.

A real uvicorn server on a free port serves the app over a store filled through the pipeline; an MLLP
listener on another free port takes ADT for the same store.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hl7
import jsonschema
import pytest
import requests
from fhirclient import client as smart_client
from fhirclient.models.encounter import Encounter as SmartEncounter
from fhirclient.models.fhirelementfactory import FHIRElementFactory
from fhirclient.models.patient import Patient as SmartPatient
from fhirpy import SyncFHIRClient
from hl7.client import MLLPClient
from hl7apy.parser import parse_message
from openapi_spec_validator import validate

from health_link.adt import AdtFeed
from health_link.mllp import MllpListener, RunningListener
from health_link.simulator import adt_message, synthetic_patient
from hub.api.app import create_app
from hub.fhir import NHS_NUMBER
from hub.registry import build_pipeline
from hub.settings import Settings
from hub.store.db import Store
from tests.support.pages import serve
from tests.support.record_hub import hub_ids
from tests.support.synthetic import Dataset, add_named, add_random, nhs_number


@dataclass
class LiveHub:
    """The hub on a loopback port, an MLLP listener beside it, and a demo token."""

    base: str
    token: str
    people: dict[str, str]
    mllp_port: int
    issue: Callable[[str, str, str | None], str]

    @property
    def fhir(self) -> str:
        return f"{self.base}/fhir"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def live(store: Store, tmp_path: Path) -> Iterator[LiveHub]:
    data = Dataset()
    named = add_named(data)
    add_random(data, 20)
    with store.session() as session:
        data.load(session)
    settings = Settings(database_url=store.url, data_dir=tmp_path / "var")
    app = create_app(settings, store)
    listener = RunningListener(MllpListener(store, AdtFeed(build_pipeline(settings, store))))
    try:
        for base in serve(app):
            token = app.state.demo_issuer.issue("dr.patel", "clinician", "ICT-1", ttl=600)
            yield LiveHub(base, token, hub_ids(store, named), listener.port,
                          lambda user, role, team: app.state.demo_issuer.issue(user, role, team, ttl=600))
    finally:
        listener.stop()


def test_fhirclient_reads_the_capability_statement_searches_and_reads(live: LiveHub) -> None:
    smart = smart_client.FHIRClient(settings={"app_id": "carehub-tests", "api_base": live.fhir})
    smart.server.session.headers.update(live.auth)
    smart.prepare()  # fetches and parses /metadata with fhirclient's own R4 models
    assert smart.server.capabilityStatement.fhirVersion == "4.0.1"
    found = list(SmartPatient.where(struct={"family": "Hale,Quinn"}).perform_resources_iter(smart.server))
    ids = {p.id for p in found}
    assert {live.people["ann"], live.people["tom"], live.people["nora"]} <= ids
    assert all(p.name[0].family.upper().startswith(("HALE", "QUINN")) for p in found)
    by_nhs = list(SmartPatient.where(struct={"identifier": f"{NHS_NUMBER}|{nhs_number(1)}"})
                  .perform_resources_iter(smart.server))
    assert [p.id for p in by_nhs] == [live.people["ann"]]
    ann = SmartPatient.read(live.people["ann"], smart.server)
    assert ann.birthDate.isostring == "1950-02-01" and ann.meta.lastUpdated is not None
    encounters = list(SmartEncounter.where(struct={"subject": f"Patient/{ann.id}"})
                      .perform_resources_iter(smart.server))
    assert encounters and all(e.subject.reference == f"Patient/{ann.id}" for e in encounters)


def test_fhirpy_counts_pages_and_fetches(live: LiveHub) -> None:
    fhir = SyncFHIRClient(live.fhir, authorization=f"Bearer {live.token}")
    everyone = fhir.resources("Patient").search(birthdate__ge="1800")
    total = everyone.count()
    fetched = everyone.limit(3).fetch_all()
    assert total == len(fetched) == len({p.id for p in fetched}) >= 20
    born_1950 = fhir.resources("Patient").search(birthdate="1950").fetch_all()
    assert live.people["ann"] in {p.id for p in born_1950}
    assert all(p["birthDate"].startswith("1950") for p in born_1950)
    assert fhir.resources("Patient").search(family=["Hale", "Quinn"]).count() == 0  # repeated: AND
    assert fhir.resources("Encounter").search(patient="no-such-person").count() == 0
    encounters = fhir.resources("Encounter").search(patient=live.people["ann"]).include("Encounter", "subject")
    entries = encounters.fetch_raw()["entry"]
    assert {e["resource"]["resourceType"] for e in entries} == {"Encounter", "Patient"}


def test_python_hl7_mllp_client_and_hl7apy_read_the_acks(live: LiveHub) -> None:
    patient = synthetic_patient(90)
    with MLLPClient("127.0.0.1", live.mllp_port) as mllp:
        answers = [mllp.send_message(adt_message("A28", f"P{v}", patient, version=v)) for v in ("2.3", "2.5.1")]
    for raw, version in zip(answers, ("2.3", "2.5.1"), strict=True):
        text = raw.decode().strip("\x0b\x1c\r")
        ack = hl7.parse(text)
        assert str(ack.segment("MSA")[1]) == "AA" and str(ack.segment("MSH")[12]) == version
        assert len(str(ack.segment("MSH")[10])) <= 20
        parsed = parse_message(text)
        assert parsed.msa.msa_1.to_er7() == "AA"
    response = requests.get(f"{live.fhir}/Patient", params={"identifier": f"{NHS_NUMBER}|{patient.nhs_number}"},
                            headers=live.auth, timeout=30)
    assert response.json()["total"] == 1


def test_openapi_document_is_valid_and_declares_the_errors_sent(live: LiveHub) -> None:
    document = requests.get(f"{live.base}/openapi.json", timeout=30).json()
    validate(document)
    search = document["paths"]["/api/persons"]["get"]["responses"]
    for status in ("400", "401", "403", "404", "422"):
        assert "application/problem+json" in search[status]["content"], status
    fhir_search = document["paths"]["/fhir/Patient"]["get"]["responses"]
    assert "application/fhir+json" in fhir_search["200"]["content"]
    for status in ("400", "401", "403", "404", "406"):
        assert "application/fhir+json" in fhir_search[status]["content"], status
    schemas: dict[str, Any] = document["components"]["schemas"]

    def check(response: requests.Response, declared: dict[str, Any]) -> None:
        media = response.headers["content-type"].split(";")[0]
        schema = declared[str(response.status_code)]["content"][media]["schema"]
        jsonschema.validate(response.json(), {**schema, "components": {"schemas": schemas}})

    check(requests.get(f"{live.base}/api/persons", params={"birth_date": "not-a-date"}, headers=live.auth,
                       timeout=30), search)
    check(requests.get(f"{live.base}/api/persons", timeout=30), search)
    check(requests.get(f"{live.fhir}/Patient", params={"given:exact": "Z"}, headers=live.auth, timeout=30),
          fhir_search)
    check(requests.get(f"{live.fhir}/Patient", params={"_format": "xml"}, headers=live.auth, timeout=30),
          fhir_search)


def validate_twice(resource: dict[str, Any]) -> None:
    """fhir.resources (R4B) and fhirclient's R4 (4.0.1) models: two validators written apart from the hub."""
    rtype = resource["resourceType"]
    module = importlib.import_module(f"fhir.resources.R4B.{rtype.lower()}")
    getattr(module, rtype).model_validate(resource)
    FHIRElementFactory.instantiate(rtype, resource)  # strict: unknown or mistyped elements raise


def test_a_sweep_of_emitted_resources_validates_under_two_independent_models(live: LiveHub, store: Store) -> None:
    reason = {"X-Break-Glass": "Validation sweep of every emitted resource"}
    seen: dict[str, int] = {}

    def get(path: str, headers: dict[str, str], **params: str) -> dict[str, Any]:
        response = requests.get(f"{live.fhir}/{path}", params=params, headers=headers, timeout=60)
        body: dict[str, Any] = response.json()
        validate_twice(body)
        seen[body["resourceType"]] = seen.get(body["resourceType"], 0) + 1
        for entry in body.get("entry", []):
            validate_twice(entry["resource"])
            seen[entry["resource"]["resourceType"]] = seen.get(entry["resource"]["resourceType"], 0) + 1
        return body

    get("metadata", {})
    workers = [{**live.auth, **reason},
               {"Authorization": f"Bearer {live.issue('tw.ali', 'transitions_worker', 'TRANS')}", **reason}]
    people = get("Patient", workers[0], birthdate="ge1800", _count="100")
    for entry in people["entry"]:
        for headers in workers:
            get(f"Patient/{entry['resource']['id']}/$everything", headers)
    get("Patient", live.auth, **{"given:exact": "x"})  # an OperationOutcome
    get("AuditEvent", {"Authorization": f"Bearer {live.issue('ig.morgan', 'auditor', None)}"}, _count="200")
    assert {"CapabilityStatement", "Bundle", "Patient", "RelatedPerson", "EpisodeOfCare", "CarePlan", "Encounter",
            "Flag", "Consent", "DocumentReference", "AuditEvent", "OperationOutcome"} <= set(seen)
