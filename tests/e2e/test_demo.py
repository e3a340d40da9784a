"""The quick start as a user runs it: `carehub demo`, `carehub status`, a second sync, the server."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import orjson
import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.api.app import create_app
from hub.settings import Settings
from hub.store.db import Store
from hub.store.tables import Entity
from tests.support.cli import CARHUB, carehub, hub_env, status
from tests.support.ports import free_port
from tests.support.waiting import wait_until_served

pytestmark = pytest.mark.slow  # one of the suite's longest (make test runs it)


def test_demo_syncs_reconciles_and_a_second_sync_changes_nothing(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url, tmp_path / "var", CAREHUB_DEMO__PEOPLE="400")
    out = carehub("demo", "--no-serve", env=env)
    assert "seeded legacy ESCR" in out.stdout

    first = status(env)
    escr = first["sources"]["legacy_escr"]
    assert escr["raw"] > 400
    assert escr["raw"] == escr["accepted"] + escr["quarantined"]
    assert escr["quarantined"] > 0
    assert first["canonical"]["Person"] > 300
    assert first["outbox"]["pending"] > 0

    listed = carehub("quarantine", "list", "--json", env=env).stdout
    assert '"reason": "' in listed and '"message": "' in listed

    again = carehub("sync", env=env)
    assert "0 accepted" in again.stdout and "0 created" in again.stdout and "0 events" in again.stdout
    second = status(env)
    assert second["canonical"] == first["canonical"]
    assert second["outbox"] == first["outbox"]
    for name, src in second["sources"].items():
        assert src["raw"] == src["accepted"] + src["quarantined"], name
    each_demo_user_lands_on_a_caseload(database_url, tmp_path / "var")


def each_demo_user_lands_on_a_caseload(database_url: str, data_dir: Path) -> None:
    """Each demo social worker's team code (their token's) is on open episodes the demo's sync brought in (the
    mapping turned the ESCR's team codes into the hub's), and opens those records without breaking glass."""
    settings = Settings(database_url=database_url, data_dir=data_dir)
    store = Store(database_url)
    with store.session() as s:
        open_episodes = [orjson.loads(doc) | {"person": pid} for pid, doc in s.execute(
            select(Entity.person_id, Entity.document).where(Entity.entity_type == "Episode"))]
    workers = [u for u in settings.auth.demo_users if u.role == "social_worker" and u.team != "ADOPT"]
    assert workers
    with TestClient(create_app(settings, store)) as client:
        for user in workers:
            theirs = [e["person"] for e in open_episodes if e.get("team") == user.team and not e.get("end")]
            assert theirs, f"{user.user}'s team {user.team} has no open episode in the demo"
            token = client.app.state.demo_issuer.issue(user.user, user.role, user.team)  # type: ignore[attr-defined]
            record = client.get(f"/api/persons/{theirs[0]}/record", headers={"Authorization": f"Bearer {token}"})
            assert record.status_code == 200 and record.json()["access"]["break_glass"] is False, user.user
    store.dispose()


def test_serve_answers_health(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url, tmp_path / "var")
    carehub("db", "upgrade", env=env)
    port = free_port()
    server = subprocess.Popen([*CARHUB, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_served(f"http://127.0.0.1:{port}/health", server, "carehub serve", timeout=30)
        reply = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert reply.status_code == 200
        assert reply.json()["status"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_demo_people_carry_uprns_and_a_cou_moves_or_flags_them(database_url: str, tmp_path: Path) -> None:
    from sqlalchemy import create_engine, func, select

    from hub.store.quality import DataQualityIssue
    from hub.store.tables import Entity

    env = hub_env(database_url, tmp_path / "var", CAREHUB_DEMO__PEOPLE="300")
    out = carehub("demo", "--no-serve", env=env)
    assert "seeded gazetteer" in out.stdout and "gazetteer homes" in out.stdout
    engine = create_engine(database_url)
    with engine.connect() as conn:
        persons = conn.scalar(select(func.count()).select_from(Entity).where(Entity.entity_type == "Person"))
        with_uprn = conn.scalar(select(func.count()).select_from(Entity).where(
            Entity.entity_type == "Person", Entity.document.contains('"uprn":"')))
    assert persons and with_uprn and with_uprn >= 0.9 * persons

    drop = tmp_path / "var" / "gazetteer" / "drop"
    watched = carehub("gazetteer", "watch", str(drop), "--once", "--min-age", "0", env=env)
    assert "applied" in watched.stdout
    with engine.connect() as conn:
        flagged = conn.scalar(select(func.count()).select_from(DataQualityIssue))
    engine.dispose()
    # the demo COU splits a lived-in house into two flats: its people are flagged for review
    assert flagged is not None and flagged >= 1, watched.stdout
    assert "flagged for data-quality review" in watched.stdout


def test_demo_runs_both_case_systems_and_starts_transitions(database_url: str, tmp_path: Path) -> None:
    """The demo starts the children's and adults' simulators (here on free ports), syncs them, starts
    transitions for young people due and delivers their referrals; the simulators stop with the demo."""
    env = hub_env(database_url, tmp_path / "var", CAREHUB_DEMO__PEOPLE="200",
                  CAREHUB_DEMO__ENABLE_SOURCES='["childrens_case", "adults_case"]')
    children, adults = (int(env[f"CAREHUB_DEMO__SIMULATORS__{name}"]) for name in ("CHILDREN", "ADULTS"))
    out = carehub("demo", "--no-serve", env=env).stdout
    assert f"simulator children on 127.0.0.1:{children}" in out and f"simulator adults on 127.0.0.1:{adults}" in out
    line = next(x for x in out.splitlines() if x.startswith("transitions:"))
    assert "started 6: 1 held (no consent), 5 referred, 5 delivered" in line, line
    hub = status(env)
    assert hub["sources"]["childrens_case"]["accepted"] > 300 and hub["sources"]["adults_case"]["accepted"] > 300
    assert hub["sources"]["adults_case"]["quarantined"] == 0
    assert hub["canonical"]["Transition"] == 6
    for port in (children, adults):  # stopped with the demo
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
