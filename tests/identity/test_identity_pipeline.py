"""The pipeline resolves people by score across two sources (SQLite, PostgreSQL).

Two small legacy databases written here (the ESCR and an adults' system, read by
the real SQL adapter and mappings) describe some of the same people differently:
a nickname, twins, a parent and child at one address. The generated legacy ESCR
with its planted duplicates checks the same at a few hundred people.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.simulators.legacy_escr import generate
from sqlalchemy import create_engine, func, select, text

from adapters.sql import SqlAdapter
from hub.pipeline import Pipeline
from hub.settings import SourceSettings
from hub.status import hub_status
from hub.store.db import Store
from hub.store.identity import MatchLink, MatchReview, person_links
from hub.store.tables import Entity, OutboxEvent, SourceLink
from hub.sync import sync_source
from tests.integration.small_legacy import MAPPING, SCHEMA

ESCR = [
    # id, forenames, surname, dob, gender, house, street, postcode
    (1, "Margaret", "Hawthorne", "12/03/1941", "F", "2", "Elm Court", "LS6 2AB"),
    (2, "Amy", "Carter", "05/05/2001", "F", "3", "Oak Road", "LS7 1AA"),
    (3, "Beth", "Carter", "05/05/2001", "F", "3", "Oak Road", "LS7 1AA"),
    (4, "John", "Smith", "14/07/1962", "M", "9", "Mill Lane", "LS8 3QT"),
    (5, "John", "Smith", "02/11/1991", "M", "9", "Mill Lane", "LS8 3QT"),
    (6, "Olu", "Adeyemi", "30/09/1978", "M", "40", "Park View", "LS9 8EE"),
]
ADULTS = [
    (101, "Peggy", "Hawthorne", "12/03/1941", "F", "2", "Elm Court", "LS6 2AB"),  # Margaret, by nickname
    (102, "Amy", "Carter", "05/05/2001", "F", "3", "Oak Road", "LS7 1AA"),  # one twin, not the other
    (103, "John", "Smith", "02/11/1991", "M", "9", "Mill Lane", "LS8 3QT"),  # the son, not the father
    (104, "Grace", "Okafor", "21/01/1985", "F", "7", "Bank Street", "LS2 7HY"),  # nobody known
]


def legacy(path: Path, source: str, people: list[tuple[Any, ...]]) -> SqlAdapter:
    """A small legacy database of ``people`` read through the tiny mapping under the name ``source``."""
    url = f"sqlite:///{path / (source + '.db')}"
    engine = create_engine(url)
    with engine.begin() as conn:
        for stmt in SCHEMA:
            conn.execute(text(stmt))
        for pid, given, family, born, sex, house, street, postcode in people:
            conn.execute(text("INSERT INTO CLIENT VALUES (:id, :fn, :sn, :dob, :g, NULL, NULL, :lu)"),
                         {"id": pid, "fn": given, "sn": family, "dob": born, "g": sex, "lu": "2024-01-01 09:00:00"})
            conn.execute(text("INSERT INTO CLIENT_ADDRESS VALUES (:id, :c, :h, :s, :p, '01/01/2010', :lu)"),
                         {"id": pid, "c": pid, "h": house, "s": street, "p": postcode, "lu": "2024-01-01 09:00:00"})
    engine.dispose()
    mapping = path / f"{source}.yaml"
    mapping.write_text(MAPPING.replace("source: tiny", f"source: {source}").replace("{value: tiny}",
                                                                                    f"{{value: {source}}}"))
    return SqlAdapter(source, SourceSettings(adapter="adapters.sql:SqlAdapter", mapping=str(mapping),
                                             options={"url": url}, batch_size=50))


def person_of(store: Store, source: str, source_id: int) -> str:
    with store.session() as s:
        entity_id = s.scalar(select(SourceLink.entity_id).where(
            SourceLink.source == source, SourceLink.stream == "clients", SourceLink.source_id == str(source_id)))
    assert entity_id is not None
    return entity_id


def test_two_sources_link_by_score_queue_twins_and_explain_every_link(store: Store, tmp_path: Path) -> None:
    escr, adults = legacy(tmp_path, "escr", ESCR), legacy(tmp_path, "adults", ADULTS)
    sync_source(store, escr, Pipeline(), batch_size=50)
    sync_source(store, adults, Pipeline(), batch_size=50)

    # Peggy Hawthorne in the adults' system is Margaret Hawthorne in the ESCR: one person, by score
    margaret = person_of(store, "escr", 1)
    assert person_of(store, "adults", 101) == margaret
    # the twins stay two people, and the adults' Amy joins Amy only
    amy, beth = person_of(store, "escr", 2), person_of(store, "escr", 3)
    assert amy != beth
    assert person_of(store, "adults", 102) == amy
    # father and son with one name at one address: two people; the adults' John (born 1991) is the son
    father, son = person_of(store, "escr", 4), person_of(store, "escr", 5)
    assert father != son
    assert person_of(store, "adults", 103) == son
    # a stranger is a new person
    assert person_of(store, "adults", 104) not in {margaret, amy, beth, father, son}

    with store.session() as s:
        persons = s.scalar(select(func.count()).select_from(Entity).where(Entity.entity_type == "Person"))
        reviews = s.execute(select(MatchReview.person_a, MatchReview.person_b, MatchReview.evidence)).all()
        links = {link.person_b: link for link in s.scalars(select(MatchLink))}
        why = person_links(s, margaret)
    assert persons == 7  # 6 in the ESCR + Grace
    # the twins were put before a reviewer (never joined silently), with the guard that stopped them
    twin_review = next(r for r in reviews if {r.person_a, r.person_b} == {amy, beth})
    assert "twins" in [g["guard"] for g in twin_review.evidence["guards"]]
    assert not any({r.person_a, r.person_b} == {father, son} for r in reviews)
    # every link keeps its score and per-field evidence
    peggy = links["adults/clients/101"]
    assert peggy.person_a == margaret and peggy.decision == "link" and peggy.score >= 0.95
    levels = {f["field"]: f["level"] for f in peggy.evidence["fields"]}
    assert levels["given_name"] == "nickname" and levels["family_name"] == "exact"
    assert levels["birth_date"] == "exact"
    assert why["records"][0]["source"] == "adults" and why["records"][0]["source_id"] == "101"
    assert why["records"][0]["evidence"]["fields"]

    # a second sync changes nothing, and the status still reconciles
    with store.session() as s:
        events = s.scalar(select(func.count()).select_from(OutboxEvent))
        s.execute(text("DELETE FROM cursors"))
    again = sync_source(store, escr, Pipeline(), batch_size=50)
    again.add(sync_source(store, adults, Pipeline(), batch_size=50))
    assert again.accepted == 0 and again.created == 0 and again.events == 0
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == events
        assert s.scalar(select(func.count()).select_from(MatchReview)) == len(reviews)
        status = hub_status(s)
    for name, src in status["sources"].items():
        assert src["raw"] == src["accepted"] + src["quarantined"], name
    escr.close()
    adults.close()


def test_the_legacy_escrs_planted_duplicates_link_or_queue(store: Store, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    summary = generate(url, people=400, seed=3)
    adapter = SqlAdapter("legacy_escr", SourceSettings(adapter="adapters.sql:SqlAdapter", mapping="legacy_escr.yaml",
                                                       options={"url": url}, batch_size=150))
    sync_source(store, adapter, Pipeline(), batch_size=150)
    adapter.close()
    with store.session() as s:
        owner = dict(s.execute(select(SourceLink.source_id, SourceLink.entity_id).where(
            SourceLink.source == "legacy_escr", SourceLink.stream == "clients")).all())
        queued = {frozenset((a, b)) for a, b in s.execute(select(MatchReview.person_a, MatchReview.person_b))}
    found = [(owner[a], owner[b]) for a, b in summary.duplicates if a in owner and b in owner]
    assert found, "the generator planted no duplicates that were accepted"
    linked = [pair for pair in found if pair[0] == pair[1]]
    asked = [pair for pair in found if frozenset(pair) in queued]
    assert len(linked) + len(asked) == len(found)
    assert len(linked) >= 0.8 * len(found)
