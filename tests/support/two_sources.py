"""Two small legacy sources describing some of the same people differently, for identity tests.

The ESCR and an adults' system, each a SQLite database read by the real SQL
adapter through the tiny hand-written mapping: a nickname (Peggy/Margaret),
twins, a father and son at one address, a man who died and a new live record of
him, a woman who moved (Greta Hawthorne, unsure: for a reviewer) and a stranger. :func:`make_hub` syncs
both into a store and serves the app over it (the identity review API and pages).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from adapters.sql import SqlAdapter
from hub.api.app import create_app
from hub.pipeline import Pipeline
from hub.settings import Settings, SourceSettings
from hub.store.db import Store
from hub.store.tables import SourceLink
from hub.sync import sync_source
from tests.support.small_legacy import MAPPING, SCHEMA

ESCR = [
    # id, forenames, surname, dob, gender, house, street, postcode
    (1, "Margaret", "Hawthorne", "12/03/1941", "F", "2", "Elm Court", "LS6 2AB"),
    (2, "Amy", "Carter", "05/05/2001", "F", "3", "Oak Road", "LS7 1AA"),
    (3, "Beth", "Carter", "05/05/2001", "F", "3", "Oak Road", "LS7 1AA"),
    (4, "John", "Smith", "14/07/1962", "M", "9", "Mill Lane", "LS8 3QT"),
    (5, "John", "Smith", "02/11/1991", "M", "9", "Mill Lane", "LS8 3QT"),
    (6, "Olu", "Adeyemi", "30/09/1978", "M", "40", "Park View", "LS9 8EE"),
    (7, "Arthur", "Dent", "11/05/1932", "M", "5", "Cliff Road", "LS3 1AA", "02/02/2023"),  # died
]
ADULTS = [
    (101, "Peggy", "Hawthorne", "12/03/1941", "F", "2", "Elm Court", "LS6 2AB"),  # Margaret, by nickname
    (102, "Amy", "Carter", "05/05/2001", "F", "3", "Oak Road", "LS7 1AA"),  # one twin, not the other
    (103, "John", "Smith", "02/11/1991", "M", "9", "Mill Lane", "LS8 3QT"),  # the son, not the father
    (104, "Grace", "Okafor", "21/01/1985", "F", "7", "Bank Street", "LS2 7HY"),  # nobody known
]
# A new live registration of Arthur Dent, who died: never joined without a reviewer.
LIVE_ARTHUR = (106, "Arthur", "Dent", "11/05/1932", "M", "5", "Cliff Road", "LS3 1AA")
# Greta Hawthorne, born the day Margaret was, living elsewhere: one person or two? A reviewer decides.
UNSURE = (105, "Greta", "Hawthorne", "12/03/1941", "F", "15", "Rose Street", "LS11 5XY")


def legacy(path: Path, source: str, people: list[tuple[Any, ...]]) -> SqlAdapter:
    """A small legacy database of ``people`` read through the tiny mapping under the name ``source``."""
    url = f"sqlite:///{path / (source + '.db')}"
    engine = create_engine(url)
    with engine.begin() as conn:
        for stmt in SCHEMA:
            conn.execute(text(stmt))
        conn.execute(text("ALTER TABLE CLIENT ADD COLUMN DOD TEXT"))
        for pid, given, family, born, sex, house, street, postcode, *died in people:
            conn.execute(text("INSERT INTO CLIENT VALUES (:id, :fn, :sn, :dob, :g, NULL, NULL, :lu, :dod)"),
                         {"id": pid, "fn": given, "sn": family, "dob": born, "g": sex, "lu": "2024-01-01 09:00:00",
                          "dod": died[0] if died else None})
            conn.execute(text("INSERT INTO CLIENT_ADDRESS VALUES (:id, :c, :h, :s, :p, '01/01/2010', :lu)"),
                         {"id": pid, "c": pid, "h": house, "s": street, "p": postcode, "lu": "2024-01-01 09:00:00"})
    engine.dispose()
    mapping = path / f"{source}.yaml"
    mapping.write_text(
        MAPPING.replace("source: tiny", f"source: {source}").replace("{value: tiny}", f"{{value: {source}}}")
        .replace("      birth_date: {from: DOB,",
                 '      death_date: {from: DOD, transform: [{date: "%d/%m/%Y"}]}\n      birth_date: {from: DOB,')
    )
    return SqlAdapter(source, SourceSettings(adapter="adapters.sql:SqlAdapter", mapping=str(mapping),
                                             options={"url": url}, batch_size=50))


def person_of(store: Store, source: str, source_id: int) -> str:
    """The golden person behind ``source``'s client ``source_id``."""
    with store.session() as s:
        entity_id = s.scalar(select(SourceLink.entity_id).where(
            SourceLink.source == source, SourceLink.stream == "clients", SourceLink.source_id == str(source_id)))
    assert entity_id is not None
    return entity_id


@dataclass
class Hub:
    """The app over two synced sources, and the people in them by name."""

    client: TestClient
    store: Store
    people: dict[str, str]

    def headers(self, user: str, role: str, team: str | None = None) -> dict[str, str]:
        token = self.client.app.state.demo_issuer.issue(user, role, team, ttl=600)  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {token}"}


def make_hub(store: Store, tmp_path: Path) -> Iterator[Hub]:
    """Sync the ESCR and the adults' system (with Greta) into ``store``; yield the app around it."""
    escr, adults = legacy(tmp_path, "escr", ESCR), legacy(tmp_path, "adults", [*ADULTS, UNSURE])
    sync_source(store, escr, Pipeline(), batch_size=50)
    sync_source(store, adults, Pipeline(), batch_size=50)
    escr.close()
    adults.close()
    people = {"margaret": person_of(store, "escr", 1), "amy": person_of(store, "escr", 2),
              "beth": person_of(store, "escr", 3), "greta": person_of(store, "adults", 105)}
    app = create_app(Settings(database_url=store.url, data_dir=tmp_path / "var"), store)
    with TestClient(app) as client:
        yield Hub(client, store, people)
