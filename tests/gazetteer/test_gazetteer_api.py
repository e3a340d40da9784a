"""GET /api/addresses?q= and GET /api/addresses/{uprn} on a tiny app holding a real store."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gazetteer.api import router
from gazetteer.load import load_file
from hub.api.problems import install
from hub.store.db import Store
from tests.support.gazetteer import TownFiles, U


def client_for(store: Store) -> TestClient:
    app = FastAPI()
    app.state.store = store
    app.include_router(router)
    install(app)  # the hub's error handlers, as the hub's own app has them
    return TestClient(app)


@pytest.fixture
def client(tiny_store: Store) -> TestClient:
    return client_for(tiny_store)


def test_search_matches_and_lists_candidates(client: TestClient) -> None:
    found = client.get("/api/addresses", params={"q": "2/14 high st", "postcode": "ZT1 1AA"})
    assert found.status_code == 200
    body = found.json()
    assert body["uprn"] == str(U + 2) and body["usrn"] == "21000001"
    assert body["lines"][0] == "Flat 2" and body["candidates"][0]["uprn"] == str(U + 2)
    unsure = client.get("/api/addresses", params={"q": "3/5 Mill Road"}).json()
    assert unsure["uprn"] is None
    assert {c["uprn"] for c in unsure["candidates"]} == {str(U + 8), str(U + 9)}
    assert client.get("/api/addresses").status_code == 422


def test_property_by_uprn(client: TestClient) -> None:
    body = client.get(f"/api/addresses/{U + 2}").json()
    assert body["uprn"] == str(U + 2) and body["status"] == "approved" and not body["retired"]
    assert body["parent_uprn"] == str(U + 1)
    assert body["addresses"][0]["lines"] == ["Flat 2", "14 High Street", "EXAMPLETOWN", "ZT1 1AA"]
    assert body["streets"][0]["descriptor"] == "HIGH STREET"
    missing = client.get("/api/addresses/999")
    assert missing.status_code == 404 and missing.json()["detail"] == "UPRN 999 is not in the gazetteer"
    assert client.get("/api/addresses/not-a-uprn").status_code == 422


def test_retired_property_shows_its_successors_and_the_index_follows_loads(
    store: Store, town_files: TownFiles
) -> None:
    load_file(store, town_files.full)
    client = client_for(store)
    summary = town_files.summary
    retired = next(p for p in town_files.town.properties if p.uprn == summary.retired_uprn)
    text = town_files.town.address(retired).single_line()
    assert client.get("/api/addresses", params={"q": text}).json()["uprn"] == str(retired.uprn)
    load_file(store, town_files.cou)
    body = client.get(f"/api/addresses/{summary.retired_uprn}").json()
    assert body["retired"] and body["status"] == "historical"
    assert sorted(body["successors"]) == sorted(str(u) for u in summary.successors)
    assert client.get("/api/addresses", params={"q": text}).json()["uprn"] is None
    flat = client.get(f"/api/addresses/{summary.successors[0]}").json()
    assert flat["predecessors"] == [str(summary.retired_uprn)]
