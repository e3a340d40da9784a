"""The shared record's app under test: a store filled through the real pipeline, the app, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.settings import Settings
from hub.store.db import Store
from tests.support.synthetic import Dataset, add_named, add_random

# The demo users the record tests sign in as: (user, role, team), as Hub.headers and Hub.token take them.
OWEN = ("sw.owen", "social_worker", "ASC-OPN")
AMIRA = ("sw.amira", "social_worker", "CIN-N")
ADOPTION = ("sw.beth", "social_worker", "ADOPT")
DOCTOR = ("dr.patel", "clinician", "ICT-1")
FINANCE = ("fin.jones", "finance_officer", None)
ADMIN = ("admin.lee", "admin", None)
AUDITOR = ("ig.morgan", "auditor", None)
DQ = ("dq.hughes", "data_quality", None)
DQ_ADOPTION = ("dq.evans", "data_quality", "ADOPT")  # the sealed record's seal names the team ADOPT


@dataclass
class Hub:
    """The app under test, its client, the named people's hub ids, and a token maker."""

    client: TestClient
    store: Store
    settings: Settings
    people: dict[str, str]

    def token(self, user: str, role: str, team: str | None = None, ttl: int = 600) -> str:
        """A demo-issuer token."""
        return self.client.app.state.demo_issuer.issue(user, role, team, ttl=ttl)  # type: ignore[attr-defined]

    def headers(self, user: str, role: str, team: str | None = None, **extra: str) -> dict[str, str]:
        """Authorization (and any extra) headers."""
        return {"Authorization": f"Bearer {self.token(user, role, team)}", **extra}


def hub_ids(store: Store, source_ids: dict[str, str]) -> dict[str, str]:
    """The golden person ids behind council_test people source ids."""
    from sqlalchemy import select

    from hub.store.tables import SourceLink

    with store.session() as s:
        rows = dict(s.execute(select(SourceLink.source_id, SourceLink.entity_id).where(
            SourceLink.source == "council_test", SourceLink.stream == "people")).all())
    return {name: rows[sid] for name, sid in source_ids.items()}


def make_hub(store: Store, tmp_path: Path, extra: int) -> Iterator[Hub]:
    """Fill ``store`` with the named people and ``extra`` random ones; yield the app around it."""
    data = Dataset()
    named = add_named(data)
    add_random(data, extra)
    with store.session() as session:
        result = data.load(session)
    assert result.quarantined == 0, result.as_dict()
    settings = Settings(database_url=store.url, data_dir=tmp_path / "var")
    app = create_app(settings, store)
    with TestClient(app) as client:
        yield Hub(client, store, settings, hub_ids(store, named))
