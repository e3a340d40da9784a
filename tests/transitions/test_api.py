"""The transitions API: the due list for the transitions worker, start and status, the cohort access rule."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from adapters.simulators.childrens_case import ChildrensCaseSystem
from hub.api.app import create_app
from hub.pipeline import Pipeline
from hub.settings import Settings
from hub.store.db import Store
from hub.sync import sync_source
from tests.support.transitions import TODAY, born, hub_person, rest_source


def test_due_list_start_status_and_cohort_access(store: Store, tmp_path: Path, children: ChildrensCaseSystem) -> None:
    due = children.add_child(birth_date=born(17, 200), cin="N2", disabilities=["AUT"])
    young = children.add_child(birth_date=born(9), cin="N1")
    sync_source(store, rest_source(children, "childrens_case", "childrens_case.yaml"), Pipeline(), batch_size=50)
    app = create_app(Settings(database_url=store.url, data_dir=tmp_path / "var"), store)
    with TestClient(app) as client:
        token = app.state.demo_issuer.issue("tw.ali", "transitions_worker", "TRANS", ttl=600)
        auth = {"Authorization": f"Bearer {token}"}
        listed = client.get("/api/transitions", params={"due_before": TODAY.isoformat()}, headers=auth)
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert [e["person_id"] for e in body["entries"]] == [hub_person(store, due)]
        entry = body["entries"][0]
        assert entry["overdue"] and entry["involvement"] == ["CIN_DISABLED"] and entry["name"]

        # the role opens the cohort's records, and nobody else's without breaking glass
        assert client.get(f"/api/persons/{hub_person(store, due)}/record", headers=auth).status_code == 200
        refused = client.get(f"/api/persons/{hub_person(store, young)}/record", headers=auth)
        assert refused.status_code == 403 and "transitions cohort" in refused.text

        started = client.post("/api/transitions", headers=auth, json={
            "person_id": hub_person(store, due), "likely_needs_after_18": True, "significant_benefit": True,
            "significant_benefit_reason": "Year 12: time to plan before 18", "consent_route": "best_interests",
            "has_capacity": True})
        assert started.status_code == 201, started.text
        held = started.json()
        assert held["stage"] == "held" and "lacks capacity" in held["hold_reason"]
        shown = client.get(f"/api/transitions/{held['id']}", headers=auth).json()
        assert shown["history"][-1]["stage"] == "held" and shown["reconciliation"]["sent"] == 0
        closing = client.post(f"/api/transitions/{held['id']}/close-childrens-case", headers=auth)
        assert closing.status_code == 409 and "s66" in closing.text

        # as FHIR: a Task on hold, its reason the hold reason
        task = client.get(f"/fhir/Task/{held['id']}", headers=auth)
        assert task.status_code == 200, task.text
        body = task.json()
        assert body["resourceType"] == "Task" and body["status"] == "on-hold" and body["intent"] == "order"
        assert body["for"]["reference"] == f"Patient/{hub_person(store, due)}"
        assert "lacks capacity" in body["statusReason"]["text"] and body["businessStatus"]["text"] == "held"
        tasks = client.get("/fhir/Task", params={"patient": hub_person(store, due)}, headers=auth).json()
        assert [e["resource"]["id"] for e in tasks["entry"]] == [held["id"]]

        social = app.state.demo_issuer.issue("sw.amira", "social_worker", "CIN-N", ttl=600)
        assert client.get("/api/transitions", headers={"Authorization": f"Bearer {social}"}).status_code == 403
