"""The audit trail: a row for every request (successes, searches, writes and denials), append-only, exportable."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from hub.store.audit import AuditEvent, AuditSubject
from tests.support.record_hub import AUDITOR, Hub
from tests.support.synthetic import nhs_number


def audit_count(hub: Hub) -> int:
    with hub.store.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_every_request_leaves_exactly_one_audit_row(hub: Hub) -> None:
    ann, sealed = hub.people["ann"], hub.people["sealed"]
    owen = hub.headers("sw.owen", "social_worker", "ASC-OPN")
    requests = [
        ("GET", "/api/persons", {"name": "hale"}, owen, 200),
        ("GET", f"/api/persons/{ann}/record", None, owen, 200),
        ("GET", f"/api/persons/{ann}/timeline", None, owen, 200),
        ("GET", f"/api/persons/{sealed}/record", None, owen, 404),
        ("GET", "/api/persons", {"name": "hale"}, {}, 401),
        ("GET", "/fhir/Patient", {"family": "hale"}, owen, 200),
        ("GET", f"/fhir/Patient/{ann}/$everything", None, owen, 200),
        ("GET", "/fhir/AuditEvent", None, owen, 403),
        ("GET", "/fhir/metadata", None, {}, 200),
        ("GET", "/api/nowhere", None, owen, 404),
    ]
    before = audit_count(hub)
    for method, path, params, headers, status in requests:
        assert hub.client.request(method, path, params=params, headers=headers).status_code == status, path
    assert audit_count(hub) == before + len(requests)
    assert hub.client.get("/health").status_code == 200  # public, not audited
    assert audit_count(hub) == before + len(requests)
    with hub.store.session() as s:
        rows = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(len(requests))).all()[::-1]
        assert [r.outcome for r in rows] == ["success", "success", "success", "denied", "denied", "success", "success",
                                             "denied", "success", "not_found"]
        assert [r.action for r in rows][:4] == ["search", "read", "read", "read"]
        sealed_row = rows[3]
        assert sealed_row.status == 404 and "sealed" in (sealed_row.reason or "")
        assert rows[4].user_id == "anonymous"
        assert rows[1].role == "social_worker" and rows[1].team == "ASC-OPN" and rows[1].purpose == "direct_care"
        assert rows[1].client_ip == "testclient"
        assert any(r.startswith("Episode/") for r in rows[1].resources)
        subjects = s.scalars(select(AuditSubject.person_id).where(AuditSubject.audit_id == rows[1].id)).all()
        assert subjects == [ann]
        # no names, addresses or NHS numbers in the trail (searches record criteria nowhere)
        blob = " ".join(f"{r.path} {r.reason} {r.resources}" for r in rows)
        assert "Hale" not in blob and nhs_number(1) not in blob and "LS1" not in blob


def test_a_request_failing_with_an_unhandled_error_leaves_its_row(hub: Hub) -> None:
    def broken() -> None:
        raise RuntimeError("a fault nothing handles")

    hub.client.app.add_api_route("/api/broken", broken)  # type: ignore[attr-defined]
    client = TestClient(hub.client.app, raise_server_exceptions=False)
    owen = hub.headers("sw.owen", "social_worker", "ASC-OPN")
    before = audit_count(hub)
    assert client.get("/api/broken", headers=owen).status_code == 500
    assert audit_count(hub) == before + 1
    with hub.store.session() as s:
        row = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert (row.path, row.status, row.outcome) == ("/api/broken", 500, "error")


def test_audit_rows_cannot_be_changed_or_deleted(hub: Hub) -> None:
    hub.client.get("/api/persons", params={"name": "hale"}, headers=hub.headers("sw.owen", "social_worker", "ASC-OPN"))
    for statement in ("UPDATE audit_events SET outcome = 'success'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError), hub.store.session() as s:
            s.execute(text(statement))


def test_auditor_reads_the_trail_as_audit_events_by_patient_agent_and_date(hub: Hub) -> None:
    ann = hub.people["ann"]
    for _ in range(3):
        hub.client.get(f"/api/persons/{ann}/record", headers=hub.headers("dr.patel", "clinician", "ICT-1"))
    hub.client.get(f"/api/persons/{ann}/record", headers=hub.headers("fin.jones", "finance_officer"))
    h = hub.headers(*AUDITOR)
    by_patient = hub.client.get("/fhir/AuditEvent", params={"patient": f"Patient/{ann}"}, headers=h).json()
    assert len(by_patient["entry"]) == 4
    by_agent = hub.client.get("/fhir/AuditEvent", params={"patient": ann, "agent": "dr.patel"}, headers=h).json()
    assert len(by_agent["entry"]) == 3
    event = by_agent["entry"][0]["resource"]
    assert event["agent"][0]["who"]["identifier"]["value"] == "dr.patel"
    assert event["entity"][0]["what"]["reference"] == f"Patient/{ann}"
    assert event["action"] == "R" and event["outcome"] == "0"
    today = datetime.now(UTC).date()
    in_range = hub.client.get("/fhir/AuditEvent", params=[("patient", ann), ("date", f"ge{today}"),
                                                          ("date", f"le{today}")], headers=h).json()
    assert len(in_range["entry"]) == 4
    tomorrow = today + timedelta(days=1)
    assert "entry" not in hub.client.get("/fhir/AuditEvent", params={"date": f"ge{tomorrow}"}, headers=h).json()
    # paging: two at a time, following next links, never a repeat or a gap
    seen: list[str] = []
    url: str | None = f"/fhir/AuditEvent?patient={ann}&_count=2"
    while url:
        page = hub.client.get(url, headers=h).json()
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert seen == [e["resource"]["id"] for e in by_patient["entry"]]
    one = hub.client.get(f"/fhir/AuditEvent/{seen[0]}", headers=h)
    assert one.status_code == 200 and one.json()["id"] == seen[0]


def test_audit_export_writes_csv(hub: Hub, tmp_path: Path) -> None:
    hub.client.get("/api/persons", params={"name": "hale"}, headers=hub.headers("sw.owen", "social_worker", "ASC-OPN"))
    out = tmp_path / "audit.csv"
    env = {"CAREHUB_DATA_DIR": str(hub.settings.data_dir), "CAREHUB_DATABASE_URL": hub.store.url, "PATH": "/usr/bin"}
    today = datetime.now(UTC).date()
    proc = subprocess.run([sys.executable, "-m", "hub", "audit", "export", "--from", str(today),
                           "--to", str(today + timedelta(days=1)), "--out", str(out)], env=env, capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == audit_count(hub)
    assert rows[-1]["user_id"] == "sw.owen" and rows[-1]["action"] == "search"
