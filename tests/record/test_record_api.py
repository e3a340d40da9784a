"""The canonical JSON API: person search and paging, the whole record with provenance, the OpenAPI document."""

from __future__ import annotations

from hub.api.schemas import PersonSearchResult, SharedRecord, Timeline
from tests.support.record_hub import OWEN, Hub
from tests.support.synthetic import nhs_number


def test_search_by_each_criterion(hub: Hub) -> None:
    h = hub.headers(*OWEN)
    ann = hub.people["ann"]

    def found(**params: str) -> list[str]:
        r = hub.client.get("/api/persons", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [p.id for p in PersonSearchResult.model_validate(r.json()).items]

    assert ann in found(name="ann hale")
    assert found(nhs_number=nhs_number(1)) == [ann]
    assert found(nhs_number=f"{nhs_number(1)[:3]} {nhs_number(1)[3:6]} {nhs_number(1)[6:]}") == [ann]
    assert found(identifier="C-1001") == [ann]
    assert found(identifier="council_test|C-1001") == [ann]
    assert found(identifier="other|C-1001") == []
    assert found(family="hale", birth_date="1950-02-01") == [ann]
    assert ann in found(postcode="LS1 4AP") and ann in found(postcode="ls14ap") and ann in found(postcode="LS1")
    assert hub.client.get("/api/persons", headers=h).status_code == 422
    assert hub.client.get("/api/persons", params={"postcode": "nowhere"}, headers=h).status_code == 422


def test_search_pages_with_a_cursor(hub: Hub) -> None:
    h = hub.headers(*OWEN)
    everyone = hub.client.get("/api/persons", params={"postcode": "LS1", "limit": 100}, headers=h).json()["items"]
    seen: list[str] = []
    url: str | None = "/api/persons?postcode=LS1&limit=2"
    while url:
        page = hub.client.get(url, headers=h).json()
        seen += [p["id"] for p in page["items"]]
        url = page["next"]
    assert seen == [p["id"] for p in everyone] and len(seen) == len(set(seen)) >= 3


def test_record_has_every_section_with_sources_and_last_update(hub: Hub) -> None:
    ann = hub.people["ann"]
    r = hub.client.get(f"/api/persons/{ann}/record", headers=hub.headers(*OWEN))
    record = SharedRecord.model_validate(r.json())
    assert record.person.data.names[0].family == "Hale"
    assert record.person.sources[0].system == "council_test" and record.person.sources[0].source_id == "C-1001"
    for section in (record.episodes, record.plans, record.commitments, record.flags, record.documents,
                    record.health_events):
        assert section and all(i.sources and i.updated for i in section)
    assert record.seals == []  # social workers do not read seal details
    timeline = Timeline.model_validate(hub.client.get(f"/api/persons/{ann}/timeline",
                                                      headers=hub.headers(*OWEN)).json())
    dates = [e.date for e in timeline.entries]
    assert dates == sorted(dates, reverse=True)
    assert {e.type for e in timeline.entries} >= {"Episode", "CarePlan", "HealthEvent", "DocumentLink", "Flag"}


def test_openapi_documents_the_record_and_its_security(hub: Hub) -> None:
    doc = hub.client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/api/persons", "/api/persons/{person_id}/record", "/api/persons/{person_id}/timeline",
                 "/api/admin/persons/{person_id}/consents", "/api/admin/persons/{person_id}/seals",
                 "/api/ops/status", "/api/ops/quarantine", "/api/audit/break-glass", "/fhir/Patient"):
        assert path in paths, path
    record = paths["/api/persons/{person_id}/record"]["get"]
    assert record["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("SharedRecord")
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    assert "x-break-glass" in {p["name"].lower() for p in record["parameters"]}
    # The hot routes read the caller's headers themselves (one dependency) and declare them by hand: they must
    # say what the routes whose caller FastAPI solves from declared parameters say.
    declared = paths["/fhir/Patient"]["get"]
    caller_headers = [p for p in declared["parameters"] if p["in"] == "header"]
    assert {p["name"] for p in caller_headers} == {"x-role", "x-purpose", "x-break-glass"}
    for path in ("/api/persons", "/api/persons/{person_id}/record", "/api/persons/{person_id}/timeline"):
        operation = paths[path]["get"]
        assert operation["security"] == declared["security"] == [{"HTTPBearer": []}], path
        assert [p for p in operation["parameters"] if p["in"] == "header"] == caller_headers, path
