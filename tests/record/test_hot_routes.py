"""The direct way in for record and timeline reads (hub.api.hot) gives what FastAPI's router gives.

The same requests go to the app as `carehub serve` builds it and to the same app built without the direct way
(``api.hot_routes = false``), over the same store; every answer (status, headers but the date, body), every
audit row with its subjects and break-glass review, and the OpenAPI document must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.api.app import create_app
from hub.api.hot import HotRoutes, hot_route
from hub.api.persons import read_record, read_timeline
from hub.settings import ApiSettings
from hub.store.audit import AuditEvent, AuditSubject, BreakGlassReview
from tests.support.record_hub import Hub

OWEN = ("sw.owen", "social_worker", "ASC-OPN")  # Ann's allocated worker
AMIRA = ("sw.amira", "social_worker", "CIN-N")  # the children's team: not the sealed child's adoption team
FINANCE = ("fin.jones", "finance_officer", None)
REASON = "Child brought to A&E unaccompanied, need placement contacts"


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


def uses_hot_routes(client: TestClient) -> bool:
    return any(m.cls is HotRoutes for m in client.app.user_middleware)  # type: ignore[attr-defined]


@pytest.fixture
def routed(hub: Hub) -> Iterator[TestClient]:
    """The same app on the same store and settings, built without the direct way in."""
    settings = hub.settings.model_copy(update={"api": ApiSettings(hot_routes=False)})
    with TestClient(create_app(settings, hub.store)) as client:
        assert uses_hot_routes(hub.client) and not uses_hot_routes(client)
        yield client


def requests_of(hub: Hub) -> list[tuple[str, str, dict[str, str], str]]:
    """(method, URL, headers, root path) of every kind of request the direct way could answer differently."""
    ann, sealed = hub.people["ann"], hub.people["sealed"]
    owen = hub.headers(*OWEN)
    amira = hub.headers(*AMIRA)
    return [
        ("GET", f"/api/persons/{ann}/record", owen, ""),
        ("GET", f"/api/persons/{ann}/timeline", owen, ""),
        ("GET", f"/api/persons/{ann}/record?format=full&x=%20", owen, ""),  # a query string the routes ignore
        ("GET", "/api/persons/no-such-person/record", owen, ""),
        ("GET", "/api/persons/no%20such/timeline", owen, ""),
        ("GET", "/api/persons/a%2Fb/record", owen, ""),  # an encoded slash: no route's person id
        ("GET", f"/api/persons/{sealed}/record", amira, ""),  # sealed
        ("GET", f"/api/persons/{sealed}/record", {**amira, "X-Break-Glass": REASON}, ""),
        ("GET", f"/api/persons/{sealed}/timeline", {**amira, "X-Break-Glass": REASON}, ""),
        ("GET", f"/api/persons/{ann}/record", {**owen, "X-Break-Glass": "x"}, ""),  # a reason too short
        ("GET", f"/api/persons/{ann}/record", {**owen, "X-Role": "admin"}, ""),  # a role the token lacks
        ("GET", f"/api/persons/{ann}/timeline", {**hub.headers(*FINANCE), "X-Purpose": "care"}, ""),
        ("GET", f"/api/persons/{ann}/record", {}, ""),  # no token
        ("GET", f"/api/persons/{ann}/record", {"Authorization": "Bearer not-a-token"}, ""),
        ("GET", f"/api/persons/{ann}/record", {"Authorization": "Basic c3c6cHc="}, ""),
        ("POST", f"/api/persons/{ann}/record", owen, ""),  # a method the route does not take
        ("HEAD", f"/api/persons/{ann}/record", owen, ""),
        ("GET", f"/api/persons/{ann}/record/", owen, ""),  # a trailing slash
        ("GET", f"/hub/api/persons/{ann}/record", owen, "/hub"),  # served under a root path
        ("GET", f"/hub/api/persons/{ann}/timeline", {}, "/hub"),
    ]


def audit_rows(hub: Hub, after: int) -> list[tuple[Any, ...]]:
    """Every audit row after id ``after`` as what it says (not its id, event id or time), with its subjects and
    any break-glass review."""
    with hub.store.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id)).all()
        rows = []
        for e in events:
            subjects = sorted(s.scalars(select(AuditSubject.person_id).where(AuditSubject.audit_id == e.id)))
            review = s.execute(select(BreakGlassReview.user_id, BreakGlassReview.reason, BreakGlassReview.status)
                               .where(BreakGlassReview.audit_id == e.id)).one_or_none()
            rows.append((e.user_id, e.issuer, e.role, e.team, e.purpose, e.client_ip, e.method, e.path, e.action,
                         e.outcome, e.status, e.reason, e.break_glass_reason, e.resources, subjects,
                         tuple(review) if review else None))
    return rows


def last_audit_id(hub: Hub) -> int:
    with hub.store.session() as s:
        return s.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) or 0


def ask(client: TestClient, method: str, url: str, headers: dict[str, str], root_path: str
        ) -> tuple[int, dict[str, str], bytes]:
    """Status, headers but the date, and body of one request (under ``root_path``, as a proxy would send it)."""
    if root_path:
        client = TestClient(client.app, root_path=root_path)
    answer = client.request(method, url, headers=headers, follow_redirects=False)
    return answer.status_code, {k: v for k, v in answer.headers.items() if k != "date"}, answer.content


def test_direct_and_routed_answers_and_audit_rows_are_the_same(hub: Hub, routed: TestClient) -> None:
    statuses = set()
    for method, url, headers, root_path in requests_of(hub):
        before = last_audit_id(hub)
        direct = ask(hub.client, method, url, headers, root_path)
        direct_rows = audit_rows(hub, before)
        before = last_audit_id(hub)
        through_router = ask(routed, method, url, headers, root_path)
        routed_rows = audit_rows(hub, before)
        assert direct == through_router, (method, url, root_path)
        assert direct_rows == routed_rows, (method, url, root_path)
        assert len(direct_rows) == 1, (method, url, root_path)  # each request audited, once
        statuses.add(direct[0])
    # The requests reached every kind of answer: read, refused, unknown, no token, wrong method, redirect.
    assert statuses >= {200, 401, 403, 404, 405, 307}


def test_the_openapi_document_is_the_same(hub: Hub, routed: TestClient) -> None:
    direct = hub.client.get("/openapi.json")
    assert direct.status_code == 200
    assert direct.json() == routed.get("/openapi.json").json()
