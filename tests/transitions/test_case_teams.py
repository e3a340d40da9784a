"""The case systems' own team codes put their people on the right caseloads: synced over REST from the
simulators, each code is the hub's team (mappings/childrens_case.yaml, adults_case.yaml; config/teams.toml),
a social worker of that team opens the record and one of another team is sent to break glass; a code the
mapping does not know is quarantined for an operator, never kept as a team nobody is on."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from adapters.simulators.adults_case import AdultsCaseSystem
from adapters.simulators.childrens_case import ChildrensCaseSystem
from hub.api.app import create_app
from hub.errors import MappingError
from hub.pipeline import Pipeline
from hub.settings import Settings
from hub.store.db import Store
from hub.store.tables import Entity, PersonIdentifier
from hub.sync import sync_source
from tests.support.transitions import TODAY, born, hub_person, rest_source


def adult_in_hub(store: Store, adults_id: str) -> str:
    with store.session() as s:
        return str(s.scalar(select(PersonIdentifier.person_id).where(PersonIdentifier.system == "adults_case",
                                                                     PersonIdentifier.value == adults_id)))


def open_teams(store: Store, person_id: str) -> set[str]:
    """The teams of the person's open episodes, as the hub holds them."""
    with store.session() as s:
        docs = s.scalars(select(Entity.document).where(Entity.person_id == person_id,
                                                       Entity.entity_type == "Episode")).all()
    return {d["team"] for d in map(orjson.loads, docs) if d.get("team") and not d.get("end")}


def test_childrens_team_codes_reach_the_caseloads(store: Store, tmp_path: Path,
                                                  children: ChildrensCaseSystem) -> None:
    disabled = children.add_child(birth_date=born(12), cin="N2", disabilities=["AUT"])      # CWD-1
    protected = children.add_child(birth_date=born(8), cin="N1", cp="NEG", team="CP-1")    # CP-1
    looked_after = children.add_child(birth_date=born(10), lac="N1")                      # LAC-1 (and CIN-N)
    leaver = children.add_child(birth_date=born(19), care_leaver=True)                     # LC-1 (and CIN-N)
    twin = children.add_child(birth_date=born(8), cin="N1", team="CIN-S")                  # CIN-S
    result = sync_source(store, rest_source(children, "childrens_case", "childrens_case.yaml"), Pipeline(),
                         batch_size=50)
    assert result.quarantined == 0, result.as_dict()
    assert open_teams(store, hub_person(store, disabled)) == {"CWD"}
    assert open_teams(store, hub_person(store, protected)) == {"CP"}
    assert open_teams(store, hub_person(store, looked_after)) == {"LAC", "CIN-N"}
    assert "LEAVING" in open_teams(store, hub_person(store, leaver))

    app = create_app(Settings(database_url=store.url, data_dir=tmp_path / "var"), store)
    with TestClient(app) as client:
        def record(person: str, team: str) -> int:
            token = app.state.demo_issuer.issue(f"sw.{team.lower()}", "social_worker", team, ttl=600)
            return client.get(f"/api/persons/{hub_person(store, person)}/record",
                              headers={"Authorization": f"Bearer {token}"}).status_code

        for person, team in ((disabled, "CWD"), (protected, "CP"), (looked_after, "LAC"), (leaver, "LEAVING")):
            assert record(person, team) == 200, (person, team)
        # another team's social worker is sent to break glass (403), as for anyone off their caseload
        assert record(disabled, "CIN-S") == 403
        assert record(protected, "LAC") == 403
        assert record(leaver, "CWD") == 403

        # the caseload shows in search: the own team's person open, the other team's reduced
        token = app.state.demo_issuer.issue("sw.cp", "social_worker", "CP", ttl=600)
        found = client.get("/api/persons", params={"birth_date": born(8).isoformat()},
                           headers={"Authorization": f"Bearer {token}"})
        assert found.status_code == 200, found.text
        access = {hit["id"]: hit["access"] for hit in found.json()["items"]}
        assert access == {hub_person(store, protected): "open", hub_person(store, twin): "break_glass_required"}


def test_adults_team_code_reaches_the_caseload(store: Store, tmp_path: Path, adults: AdultsCaseSystem) -> None:
    adult = adults.add_adult(birth_date=TODAY.replace(year=TODAY.year - 70, day=1), seed=7)
    result = sync_source(store, rest_source(adults, "adults_case", "adults_case.yaml"), Pipeline(), batch_size=50)
    assert result.quarantined == 0, result.as_dict()
    person = adult_in_hub(store, adult)
    assert open_teams(store, person) == {"ASC-E"}
    app = create_app(Settings(database_url=store.url, data_dir=tmp_path / "var"), store)
    with TestClient(app) as client:
        def record(team: str) -> int:
            token = app.state.demo_issuer.issue("sw.adults", "social_worker", team, ttl=600)
            return client.get(f"/api/persons/{person}/record",
                              headers={"Authorization": f"Bearer {token}"}).status_code

        assert record("ASC-E") == 200
        assert record("ASC-OPN") == 403


def test_an_unknown_team_code_is_quarantined_for_an_operator(store: Store, tmp_path: Path,
                                                            children: ChildrensCaseSystem) -> None:
    child = children.add_child(birth_date=born(11), cin="N1")
    children.put("allocations", {"id": "AL-YOT", "person_id": child, "team_code": "YOT-9", "worker_id": "W001",
                                 "start_date": born(1).isoformat(), "end_date": None})
    result = sync_source(store, rest_source(children, "childrens_case", "childrens_case.yaml"), Pipeline(),
                         batch_size=50)
    assert result.quarantined == 1, result.as_dict()
    assert open_teams(store, hub_person(store, child)) == {"CIN-N"}   # nothing kept under a team nobody is on
    app = create_app(Settings(database_url=store.url, data_dir=tmp_path / "var"), store)
    with TestClient(app) as client:
        token = app.state.demo_issuer.issue("admin.lee", "admin", None, ttl=600)
        listed = client.get("/api/ops/quarantine", params={"source": "childrens_case"},
                            headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200, listed.text
        [entry] = listed.json()
        assert (entry["stream"], entry["source_id"], entry["reason"], entry["field"]) == (
            "allocations", "AL-YOT", "CODE_UNMAPPED", "team")
        assert entry["status"] == "open"  # the message quotes the code to a role that may read episodes


def test_a_map_to_a_team_the_hub_does_not_hold_stops_the_source(tmp_path: Path,
                                                                 children: ChildrensCaseSystem) -> None:
    shipped = Path(__file__).resolve().parents[2] / "mappings" / "childrens_case.yaml"
    mapping = tmp_path / "childrens_case.yaml"
    mapping.write_text(shipped.read_text(encoding="utf-8").replace("CP-1: CP,", "CP-1: CPT,"), encoding="utf-8")
    with pytest.raises(MappingError) as refused:
        rest_source(children, "childrens_case", str(mapping))
    assert "'CP-1' maps to 'CPT', which is not a team code" in refused.value.message
    assert refused.value.message.count("CWD") == 1  # the known codes are listed
