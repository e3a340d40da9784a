"""The hot paths under concurrency: group-committed audit rows, remembered tokens, search by name prefix.

Many requests answered at once share the audit writer's transactions; each must
still leave its own row (who, role, team, purpose, person, outcome) before its
answer, whatever the others' outcome.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from hub.api.app import create_app
from hub.settings import AuthSettings, Settings
from hub.store.audit import AuditEvent, AuditSubject, BreakGlassReview
from hub.store.db import Store
from tests.support.clock import SteppedClock
from tests.support.postgres import empty_postgres
from tests.support.record_hub import Hub, make_hub
from tests.support.waiting import wait_for

BURST = 60


def test_a_burst_of_concurrent_requests_leaves_one_complete_audit_row_each(hub: Hub) -> None:
    ann, tom, sealed = hub.people["ann"], hub.people["tom"], hub.people["sealed"]
    owen = hub.headers("sw.owen", "social_worker", "ASC-OPN")
    glass = hub.headers("sw.owen", "social_worker", "ASC-OPN", **{"X-Break-Glass": "Police welfare check tonight"})
    calls = [
        (f"/api/persons/{ann}/record", owen, 200, "success", ann),
        (f"/api/persons/{ann}/timeline", owen, 200, "success", ann),
        (f"/api/persons/{tom}/record", owen, 403, "denied", tom),
        (f"/api/persons/{sealed}/record", owen, 404, "denied", sealed),
        (f"/api/persons/{tom}/record", glass, 200, "success", tom),
        (f"/api/persons/{ann}/record", {}, 401, "denied", None),
    ]
    burst = [calls[i % len(calls)] for i in range(BURST)]
    with hub.store.session() as s:
        last = s.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) or 0

    async def fire() -> list[int]:
        transport = httpx.ASGITransport(app=hub.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            answers = await asyncio.gather(*(client.get(path, headers=headers) for path, headers, *_ in burst))
        return [a.status_code for a in answers]

    assert asyncio.run(fire()) == [status for _, _, status, _, _ in burst]
    with hub.store.session() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id)).all()
        assert len(rows) == BURST
        subjects = {audit_id: person for audit_id, person in s.execute(
            select(AuditSubject.audit_id, AuditSubject.person_id).where(AuditSubject.audit_id > last))}
        reviews = s.scalars(select(BreakGlassReview.audit_id).where(BreakGlassReview.audit_id > last)).all()
    seen = sorted((r.path, r.status, r.outcome, subjects.get(r.id), r.break_glass_reason) for r in rows)
    wanted = sorted((path, status, outcome, person if status != 401 else None,
                     "Police welfare check tonight" if "X-Break-Glass" in headers else None)
                    for path, headers, status, outcome, person in burst)
    assert seen == wanted
    for r in rows:
        if r.status != 401:
            assert (r.user_id, r.role, r.team, r.purpose) == ("sw.owen", "social_worker", "ASC-OPN", "direct_care")
    assert len(set(reviews)) == sum(1 for _, headers, *_ in burst if "X-Break-Glass" in headers)
    assert len({r.event_id for r in rows}) == BURST


def test_a_remembered_token_is_refused_once_it_expires(store: Store, tmp_path: Path, hub: Hub) -> None:
    # The hub fixture's data_dir: its demo signing key exists already, so issuing costs no key generation.
    settings = Settings(database_url=store.url, data_dir=tmp_path / "var",
                        auth=AuthSettings(demo=True, clock_skew_seconds=0))
    ttl = 3
    clock = SteppedClock()
    with TestClient(create_app(settings, store, clock=clock.timestamp)) as client:
        token = client.app.state.demo_issuer.issue("dr.patel", "clinician", "ICT-1", ttl=ttl)  # type: ignore[attr-defined]
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/persons", params={"family": "hale"}, headers=auth).status_code == 200
        assert client.get("/api/persons", params={"family": "hale"}, headers=auth).status_code == 200
        clock.advance(ttl + 1)  # the remembered token is now past its expiry on the hub's clock
        answer = client.get("/api/persons", params={"family": "hale"}, headers=auth)
        assert answer.status_code == 401
        assert "expired" in answer.json()["detail"]
        # And it is not let in again once forgotten: verified afresh, it is refused on the same clock.
        again = client.get("/api/persons", params={"family": "hale"}, headers=auth)
        assert again.status_code == 401 and "expired" in again.json()["detail"]


def test_family_name_prefixes_find_exactly_the_people_whose_family_name_starts_with_them(hub: Hub) -> None:
    patel = hub.headers("dr.patel", "clinician", "ICT-1")
    everyone = {}
    for initial in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        for person in hub.client.get("/api/persons", params={"given": initial, "limit": 100},
                                     headers=patel).json()["items"]:
            everyone[person["id"]] = person["name"].split()[-1].upper()
    assert len(everyone) > 20
    for prefix in ("h", "Ha", "HALE", "hale-", "Hal e", "o", "Zz"):
        letters = "".join(c for c in prefix.upper() if c.isalpha())
        found = hub.client.get("/api/persons", params={"family": prefix, "limit": 100}, headers=patel).json()
        assert found["next_cursor"] is None
        assert [p["id"] for p in found["items"]] == sorted(pid for pid, family in everyone.items()
                                                           if family.startswith(letters)), prefix


@pytest.mark.postgres
def test_reads_and_their_audit_go_on_after_the_database_ends_every_connection_of_the_hub(
        postgres_url: str, tmp_path: Path) -> None:
    """The read threads and the audit writer keep their connections between requests; when PostgreSQL ends
    them (a restart, an administrator) the next requests are answered and audited all the same."""
    empty_postgres(postgres_url)
    store = Store(postgres_url)
    for hub in make_hub(store, tmp_path, 5):
        ann = hub.people["ann"]
        patel = hub.headers("dr.patel", "clinician", "ICT-1")
        paths = [f"/api/persons/{ann}/record", f"/api/persons/{ann}/timeline", "/api/persons?family=hale"]
        for path in paths * 3:  # every read thread and the audit writer now hold a connection
            assert hub.client.get(path, headers=patel).status_code == 200
        with store.session() as s:
            before = s.scalar(select(func.count()).select_from(AuditEvent))
        admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            ended = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        admin.dispose()
        assert ended and ended >= 2
        for path in paths * 3:
            answer = hub.client.get(path, headers=patel)
            assert answer.status_code == 200, answer.text
        assert hub.client.get(f"/api/persons/{ann}/record", headers=patel).json()["id"] == ann
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(AuditEvent)) == before + len(paths) * 3 + 1
    store.dispose()


def test_on_sqlite_a_thread_copies_the_audit_trails_log_into_the_database_file(
        sqlite_template: Path, tmp_path: Path) -> None:
    """The audit writer's commits leave checkpoints (and their fsync) to a thread of their own, which copies
    the write-ahead log into the database file within a couple of seconds, long before the log would reach
    the size at which a commit checkpoints by itself."""
    database = tmp_path / "hub.db"
    shutil.copy(sqlite_template, database)
    store = Store(f"sqlite:///{database}")
    for hub in make_hub(store, tmp_path, 5):
        before = database.stat().st_size
        patel = hub.headers("dr.patel", "clinician", "ICT-1")
        for _ in range(30):
            assert hub.client.get(f"/api/persons/{hub.people['ann']}/record", headers=patel).status_code == 200
        wait_for(lambda start=before: database.stat().st_size > start, "the log copied into the database file",
                 timeout=10)
    store.dispose()
