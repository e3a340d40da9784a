"""FHIR search as a standard client speaks it: OR, AND, modifiers, prefixes, totals, formats, capability.

Each expectation is computed in the test from every Patient the facade hands
out (an oracle over the same data), so a search that widens or narrows the
answer fails.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from hub.fhir import NHS_NUMBER
from tests.support.record_hub import DOCTOR, Hub
from tests.support.synthetic import nhs_number

BASE = "http://testserver/fhir"


def get(hub: Hub, path: str, params: Any = None, **headers: str) -> Any:
    return hub.client.get(path, params=params, headers={**hub.headers(*DOCTOR), **headers})


def ids(body: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == mode]


def search(hub: Hub, params: Any, path: str = "/fhir/Patient") -> list[str]:
    r = get(hub, path, params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(ids(body)), body.get("link")
    return ids(body)


@pytest.fixture
def everyone(hub: Hub) -> dict[str, dict[str, Any]]:
    """Every Patient the doctor may find (everyone in the synthetic data has a birth date)."""
    body = get(hub, "/fhir/Patient", {"birthdate": "ge1800", "_count": "100"}).json()
    assert body["total"] == len(body["entry"]) >= 20
    return {e["resource"]["id"]: e["resource"] for e in body["entry"]}


def family(p: dict[str, Any]) -> str:
    return p["name"][0]["family"].upper()


def test_comma_is_or_for_strings_ids_and_identifiers(hub: Hub, everyone: dict[str, dict[str, Any]]) -> None:
    ann, nora = hub.people["ann"], hub.people["nora"]
    expected = sorted(pid for pid, p in everyone.items() if family(p).startswith(("HALE", "QUINN")))
    assert nora in expected and ann in expected
    assert search(hub, {"family": "Hale,Quinn"}) == expected
    assert search(hub, {"_id": f"{ann},{nora}"}) == sorted([ann, nora])
    assert search(hub, {"identifier": f"{NHS_NUMBER}|{nhs_number(1)},{NHS_NUMBER}|{nhs_number(4)}"}) == sorted(
        [ann, nora])
    assert search(hub, {"identifier": f"{nhs_number(1)},C-1004"}) == sorted([ann, nora])


def test_repeated_parameters_are_and(hub: Hub, everyone: dict[str, dict[str, Any]]) -> None:
    assert search(hub, [("family", "Hale"), ("family", "Quinn")]) == []
    born_1950s = sorted(pid for pid, p in everyone.items() if "1950-01-01" <= p["birthDate"] <= "1959-12-31")
    assert search(hub, [("birthdate", "ge1950"), ("birthdate", "le1959")]) == born_1950s
    assert search(hub, [("family", "Hale"), ("given", "Ann,Tom"), ("given", "Tom")]) == sorted(
        pid for pid, p in everyone.items() if family(p).startswith("HALE") and p["name"][0]["given"][0] == "Tom")


def test_unsupported_parameters_and_modifiers_are_refused_unless_lenient(hub: Hub) -> None:
    for params in ({"family": "Hale", "given:exact": "Zzzz"}, {"family": "Hale", "telecom": "0113"},
                   {"family": "Hale", "_sort": "family"}, {"family:missing": "false"},
                   {"identifier:of-type": "x|y|z"}):
        r = get(hub, "/fhir/Patient", params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    lenient = get(hub, "/fhir/Patient", {"family": "Hale", "given:exact": "Zzzz"}, prefer="handling=lenient")
    assert lenient.status_code == 200
    body = lenient.json()
    assert ids(body) == search(hub, {"family": "Hale"})
    self_link = next(link["url"] for link in body["link"] if link["relation"] == "self")
    assert dict(parse_qsl(urlsplit(self_link).query)) == {"family": "Hale"}
    assert get(hub, "/fhir/Encounter", {"patient": hub.people["ann"], "_include": "Encounter:nonsense"}
               ).status_code == 400
    assert get(hub, "/fhir/Encounter", {"patient": hub.people["ann"], "date": "ge2020"}).status_code == 400


@pytest.mark.parametrize("value", ["1950", "1950-02", "1950-02-01", "2012-04-03", "1978"])
def test_birthdate_prefixes_and_partial_dates(hub: Hub, everyone: dict[str, dict[str, Any]], value: str) -> None:
    def bounds(text: str) -> tuple[date, date]:
        parts = [int(p) for p in text.split("-")]
        if len(parts) == 3:
            d = date(*parts)
            return d, d
        if len(parts) == 2:
            first = date(parts[0], parts[1], 1)
            last = date(parts[0] + (parts[1] == 12), parts[1] % 12 + 1, 1)
            return first, date.fromordinal(last.toordinal() - 1)
        return date(parts[0], 1, 1), date(parts[0], 12, 31)

    low, high = bounds(value)
    tests = {"eq": lambda b: low <= b <= high, "ne": lambda b: not low <= b <= high, "gt": lambda b: b > high,
             "sa": lambda b: b > high, "lt": lambda b: b < low, "eb": lambda b: b < low, "ge": lambda b: b >= low,
             "le": lambda b: b <= high}
    born = {pid: date.fromisoformat(p["birthDate"]) for pid, p in everyone.items()}
    for prefix, holds in tests.items():
        expected = sorted(pid for pid, b in born.items() if holds(b))
        assert search(hub, {"birthdate": f"{prefix}{value}", "_count": "100"}) == expected, prefix
    assert search(hub, {"birthdate": value, "_count": "100"}) == search(hub, {"birthdate": f"eq{value}",
                                                                              "_count": "100"})


def test_postcode_matches_from_its_start(hub: Hub) -> None:
    nora, ann = hub.people["nora"], hub.people["ann"]
    assert nora in search(hub, {"address-postalcode": "LS9"})
    assert nora in search(hub, {"address-postalcode": "ls9 8"})
    assert nora not in search(hub, {"address-postalcode": "S9 8"})
    assert nora in search(hub, {"address-postalcode:contains": "S9 8"})
    assert ann in search(hub, {"address-postalcode:exact": "LS1 4AP"})
    assert ann not in search(hub, {"address-postalcode:exact": "LS1 4A"})


def test_totals_count_zero_and_a_capped_count(hub: Hub) -> None:
    every = [pid for page in _pages(hub, "/fhir/Patient?birthdate=ge1800&_count=7") for pid in ids(page)]
    zero = get(hub, "/fhir/Patient", {"birthdate": "ge1800", "_count": "0"})
    assert zero.status_code == 200
    assert zero.json()["total"] == len(every) and "entry" not in zero.json()
    assert get(hub, "/fhir/Patient", {"birthdate": "ge1800", "_summary": "count"}).json()["total"] == len(every)
    big = get(hub, "/fhir/Patient", {"birthdate": "ge1800", "_count": "100000"})
    assert big.status_code == 200 and big.json()["total"] == len(every)
    self_link = next(link["url"] for link in big.json()["link"] if link["relation"] == "self")
    assert int(dict(parse_qsl(urlsplit(self_link).query))["_count"]) <= 500
    assert get(hub, "/fhir/Patient", {"birthdate": "ge1800", "_count": "-1"}).status_code == 400
    uncounted = get(hub, "/fhir/Patient", {"birthdate": "ge1800", "_total": "none", "_count": "5"}).json()
    assert "total" not in uncounted and len(uncounted["entry"]) == 5
    encounters = get(hub, "/fhir/Encounter", {"patient": hub.people["ann"], "_count": "0"}).json()
    assert encounters["total"] == len(search(hub, {"patient": hub.people["ann"]}, "/fhir/Encounter")) >= 1


def test_a_sealed_person_leaves_no_count_behind(hub: Hub) -> None:
    assert get(hub, "/fhir/Patient", {"family": "Marlow", "_count": "0"}).json()["total"] == 0
    assert search(hub, {"family": "Marlow"}) == []


def _pages(hub: Hub, url: str) -> list[dict[str, Any]]:
    pages = []
    next_url: str | None = url
    while next_url:
        body = get(hub, next_url).json()
        pages.append(body)
        next_url = next((link["url"] for link in body["link"] if link["relation"] == "next"), None)
    return pages


def test_unknown_patient_or_full_url_gives_a_bundle(hub: Hub) -> None:
    ann = hub.people["ann"]
    mine = search(hub, {"patient": ann}, "/fhir/Encounter")
    assert mine
    assert search(hub, {"patient": f"{BASE}/Patient/{ann}"}, "/fhir/Encounter") == mine
    assert search(hub, {"subject": f"Patient/{ann}"}, "/fhir/Encounter") == mine
    assert search(hub, {"subject:Patient": ann}, "/fhir/Encounter") == mine
    assert search(hub, {"patient": "no-such-person"}, "/fhir/Encounter") == []
    assert search(hub, {"patient": f"https://elsewhere.example/fhir/Patient/{ann}"}, "/fhir/Encounter") == []
    assert search(hub, {"patient": f"{ann},no-such-person"}, "/fhir/Encounter") == mine
    assert search(hub, {"patient": ann, "_id": f"{mine[0]},nope"}, "/fhir/Encounter") == mine[:1]


def test_xml_is_not_acceptable(hub: Hub) -> None:
    ann = hub.people["ann"]
    for params, accept in (({"_format": "xml"}, None), ({"_format": "application/fhir+xml"}, None),
                           ({}, "application/fhir+xml"), ({}, "application/xml, text/xml")):
        headers = {"accept": accept} if accept else {}
        r = get(hub, f"/fhir/Patient/{ann}", params, **headers)
        assert r.status_code == 406, (params, accept, r.status_code)
        assert r.json()["resourceType"] == "OperationOutcome"
        assert hub.client.get("/fhir/metadata", params=params, headers=headers).status_code == 406
    assert get(hub, f"/fhir/Patient/{ann}", {"_format": "json"}).status_code == 200
    assert get(hub, f"/fhir/Patient/{ann}", accept="application/fhir+json;q=0.9, */*;q=0.1").status_code == 200


def test_searched_patients_carry_the_meta_of_a_read(hub: Hub) -> None:
    for pid in (hub.people["ann"], hub.people["nora"]):
        read = get(hub, f"/fhir/Patient/{pid}").json()
        found = get(hub, "/fhir/Patient", {"_id": pid}).json()["entry"][0]["resource"]
        assert read["meta"] == found["meta"] and "lastUpdated" in read["meta"]
        assert read == found


def test_capability_statement_declares_exactly_what_works(hub: Hub) -> None:
    cap = hub.client.get("/fhir/metadata").json()
    resources = {r["type"]: r for r in cap["rest"][0]["resource"]}
    assert {p["name"] for p in resources["Encounter"]["searchParam"]} == {"patient", "subject", "_id"}
    assert {"Encounter:subject", "Encounter:patient"} <= set(resources["Encounter"]["searchInclude"])
    assert {"CarePlan:patient", "CarePlan:subject"} <= set(resources["CarePlan"]["searchInclude"])
    ann = hub.people["ann"]
    samples = {"string": "Hale", "token": nhs_number(1), "date": "ge1900", "reference": ann}
    for rtype, resource in resources.items():
        if rtype == "AuditEvent":
            continue
        for param in resource["searchParam"]:
            value = {"_id": ann, "gender": "female"}.get(param["name"], samples[param["type"]])
            r = get(hub, f"/fhir/{rtype}", {param["name"]: value})
            assert r.status_code == 200, (rtype, param["name"], r.text)
        for include in resource.get("searchInclude", []):
            r = get(hub, f"/fhir/{rtype}", {"patient": ann, "_include": include})
            assert r.status_code == 200, (rtype, include, r.text)
        declared = {p["name"] for p in resource["searchParam"]}
        for undeclared in {"patient", "subject", "identifier", "name", "birthdate", "date"} - declared:
            r = get(hub, f"/fhir/{rtype}", {undeclared: ann})
            assert r.status_code == 400, (rtype, undeclared)


def test_smart_configuration_is_public_and_honest(hub: Hub) -> None:
    r = hub.client.get("/fhir/.well-known/smart-configuration")
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    assert hub.client.get("/.well-known/smart-configuration").status_code == 404


def test_api_identifier_takes_nhs_numbers(hub: Hub) -> None:
    ann = hub.people["ann"]

    def found(identifier: str) -> list[str]:
        r = hub.client.get("/api/persons", params={"identifier": identifier}, headers=hub.headers(*DOCTOR))
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()["items"]]

    assert found(nhs_number(1)) == [ann]
    assert found(f"nhs|{nhs_number(1)}") == [ann]
    assert found(f"{NHS_NUMBER}|{nhs_number(1)}") == [ann]
    assert found("C-1001") == [ann]
    assert found("council_test|C-1001") == [ann]
    assert found("elsewhere|C-1001") == []


def _doc_table(page: str, marker: str) -> list[list[str]]:
    text = (Path(__file__).resolve().parents[2] / "docs" / page).read_text()
    block = text.split(f"<!-- {marker}:", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("|")][2:]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]


def test_the_docs_list_exactly_what_the_capability_statement_declares(hub: Hub) -> None:
    cap = hub.client.get("/fhir/metadata").json()
    declared, includes = set(), {}
    for resource in cap["rest"][0]["resource"]:
        for param in resource["searchParam"]:
            said = dict(part.split(": ", 1) for part in param["documentation"].split("; ")[1:] if ": " in part)
            declared.add((resource["type"], param["name"], param["type"], said.get("modifiers", "-"),
                           said.get("prefixes", "-")))
        if resource.get("searchInclude"):
            includes[resource["type"]] = resource["searchInclude"]
    documented = {tuple(row) for row in _doc_table("shared-record.md", "search-parameters")}
    assert documented == declared
    listed = {row[0]: [i.strip().strip("`") for i in row[1].split(",")]
              for row in _doc_table("shared-record.md", "search-includes")}
    assert listed == includes
