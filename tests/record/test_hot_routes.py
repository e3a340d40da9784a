"""The direct way in for record and timeline reads (hub.api.hot): which requests take it, and that its answers,
refusals and audit rows are those of the FastAPI routes it stands in for."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hub.api.hot import hot_route
from hub.api.persons import read_record, read_timeline
from hub.store.audit import AuditEvent
from tests.support.record_hub import OWEN, Hub


def scope(path: str, method: str = "GET", root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path}


@pytest.mark.parametrize(("path", "method", "root_path", "expected"), [
    ("/api/persons/p-1/record", "GET", "", (read_record, "p-1")),
    ("/api/persons/p-1/timeline", "GET", "", (read_timeline, "p-1")),
    ("/hub/api/persons/p-1/record", "GET", "/hub", (read_record, "p-1")),
    ("/api/persons/p-1/record", "POST", "", None),
    ("/api/persons/p-1/record", "HEAD", "", None),
    ("/api/persons//record", "GET", "", None),
    ("/api/persons/p-1/record/", "GET", "", None),
    ("/api/persons/p-1/record/extra", "GET", "", None),
    ("/api/persons/p-1", "GET", "", None),
    ("/api/persons/p-1/links", "GET", "", None),
    ("/api/persons", "GET", "", None),
    ("/fhir/Patient/p-1", "GET", "", None),
])
def test_only_gets_of_a_record_or_timeline_take_the_direct_way(path: str, method: str, root_path: str,
                                                               expected: Any) -> None:
    assert hot_route(scope(path, method, root_path)) == expected


def test_refusals_match_the_routers_and_every_request_leaves_its_row(hub: Hub) -> None:
    person = hub.people["ann"]
    with hub.store.session() as s:
        before = s.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) or 0

    # No token: the same problem+json, header and all, as a route FastAPI serves (the search).
    direct = hub.client.get(f"/api/persons/{person}/record")
    routed = hub.client.get("/api/persons", params={"name": "hale"})
    assert direct.status_code == routed.status_code == 401
    assert direct.json() == routed.json()
    assert direct.headers["content-type"] == routed.headers["content-type"] == "application/problem+json"
    assert direct.headers["www-authenticate"] == routed.headers["www-authenticate"]

    # A role that may not read records at all, and a person who does not exist.
    finance = hub.headers("fin.kaur", "finance_officer")
    refused = hub.client.get(f"/api/persons/{person}/timeline", headers={**finance, "X-Role": "clinician"})
    assert refused.status_code == 403 and refused.json()["code"] == "CAREHUB-E403"
    owen = hub.headers(*OWEN)
    missing = hub.client.get("/api/persons/no-such-person/record", headers=owen)
    assert missing.status_code == 404 and missing.json()["detail"] == "no person no-such-person"

    # A read: the answer is the record, and the five requests left five rows with their outcomes.
    found = hub.client.get(f"/api/persons/{person}/record", headers=owen)
    assert found.status_code == 200 and found.json()["id"] == person
    with hub.store.session() as s:
        rows = s.execute(select(AuditEvent.path, AuditEvent.status, AuditEvent.outcome).where(
            AuditEvent.id > before).order_by(AuditEvent.id)).all()
    assert [(r.status, r.outcome) for r in rows] == [(401, "denied"), (401, "denied"), (403, "denied"),
                                                    (404, "not_found"), (200, "success")]
    assert rows[-1].path == f"/api/persons/{person}/record"
