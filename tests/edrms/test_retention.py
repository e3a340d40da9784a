"""Retention dates per rule, recomputed when the facts change; legal holds stack and stop a date passing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from edrms.jobs import refresh_documents
from edrms.retention import EpisodeFacts, PersonFacts, Schedule
from hub.contract import SourceRecord
from hub.pipeline import Pipeline
from hub.settings import reload_settings
from hub.store.documents import EdrmsDocument
from tests.support.edrms import EdrmsHub
from tests.support.synthetic import SOURCE, mapper, nhs_number, person_payload

CONFIG = Path(__file__).resolve().parents[2] / "config" / "retention.toml"
TODAY = date(2026, 1, 1)


@pytest.fixture(scope="module")
def schedule() -> Schedule:
    return Schedule.load(CONFIG)


def episode(kind: str, area: str, start: str, end: str | None = None, eid: str = "e1") -> EpisodeFacts:
    return EpisodeFacts(eid, kind, area, date.fromisoformat(start), date.fromisoformat(end) if end else None)


def test_each_rule_counts_from_its_trigger(schedule: Schedule) -> None:
    child = PersonFacts(date(2010, 5, 1), None, [episode("LAC", "childrens", "2015-01-01")])
    lac = schedule.compute(stated_class=None, created=None, person=child, episode=child.episodes[0], on=TODAY)
    assert (lac.record_class, lac.review_date, lac.trigger) == ("looked_after_child", date(2085, 5, 1), "birth")
    child.death_date = date(2020, 2, 29)  # died aged 9: 15 years from death
    assert schedule.compute(stated_class=None, created=None, person=child, episode=None,
                            on=TODAY).review_date == date(2035, 2, 28)
    adult = PersonFacts(date(1950, 1, 1), None, [episode("long_term_support", "adults", "2015-01-01")])
    assert schedule.compute(stated_class=None, created=None, person=adult, episode=None,
                            on=TODAY).review_date is None  # the case is open: no date yet
    adult.episodes = [episode("long_term_support", "adults", "2015-01-01", "2019-03-01")]
    assert schedule.compute(stated_class=None, created=None, person=adult, episode=None,
                            on=TODAY).review_date == date(2027, 3, 1)
    adult.death_date = date(2018, 6, 1)  # whichever comes first
    assert schedule.compute(stated_class=None, created=None, person=adult, episode=None,
                            on=TODAY).review_date == date(2026, 6, 1)
    adopted = PersonFacts(date(2012, 1, 1), None, [episode("adoption", "childrens", "2014-01-01", "2015-09-30")])
    got = schedule.compute(stated_class="adoption", created=None, person=adopted, episode=None, on=TODAY)
    assert got.review_date == date(2115, 9, 30) and got.reference == "CSC 05"
    carer = PersonFacts(date(1970, 1, 1), None, [episode("fostering_approval", "childrens", "2001-01-01",
                                                         "2012-04-30")])
    assert schedule.compute(stated_class=None, created=None, person=carer, episode=None,
                            on=TODAY).review_date == date(2022, 4, 30)


def test_the_longer_period_for_care_experienced_people_when_switched_on(tmp_path: Path) -> None:
    text = CONFIG.read_text().replace("enabled = false", "enabled = true")
    path = tmp_path / "retention.toml"
    path.write_text(text)
    longer = Schedule.load(path)
    child = PersonFacts(date(2010, 5, 1), None, [episode("LAC", "childrens", "2015-01-01")])
    got = longer.compute(stated_class=None, created=None, person=child, episode=None, on=TODAY)
    assert got.review_date == date(2135, 5, 1) and got.rule == "childrens+care_experienced"


def test_holds_stack_by_scope_and_suspend_the_review(schedule: Schedule) -> None:
    adult = PersonFacts(date(1940, 1, 1), date(2016, 1, 1), [episode("long_term_support", "adults", "2010-01-01",
                                                                      "2016-01-01")])
    covid = schedule.compute(stated_class=None, created=date(2021, 5, 1), person=adult, episode=None, on=TODAY)
    assert covid.review_date == date(2024, 1, 1) and covid.holds == ("COVID-19 Inquiry",)
    assert not covid.due(TODAY) and covid.action == "review"
    before = schedule.compute(stated_class=None, created=date(2019, 5, 1), person=adult, episode=None, on=TODAY)
    assert before.holds == () and before.due(TODAY)
    child = PersonFacts(date(1940, 1, 1), None, [episode("CIN", "childrens", "1950-01-01", "1955-01-01")])
    old = schedule.compute(stated_class=None, created=date(2021, 1, 1), person=child, episode=None, on=TODAY)
    assert old.review_date == date(2015, 1, 1) and old.holds == ("IICSA",) and not old.due(TODAY)


def test_bad_rules_are_refused_with_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "retention.toml"
    path.write_text(CONFIG.read_text().replace('trigger = "approval_end"', 'trigger = "approval_ended"'))
    with pytest.raises(Exception, match="approval_ended"):
        Schedule.load(path)


def ingest(hub: EdrmsHub, stream: str, source_id: str, payload: dict) -> None:
    with hub.store.session() as session:
        Pipeline().ingest(session, SOURCE, [SourceRecord(stream, source_id, payload, "2026-01-01T00:00:00")],
                          mapper)
        session.commit()


def review_dates(hub: EdrmsHub, *keys: str) -> list[tuple[date | None, list[str]]]:
    with hub.store.session() as s:
        rows = {d.object_id: (d.retain_until, list(d.legal_holds)) for d in s.scalars(select(EdrmsDocument))}
    return [rows[hub.docs[k].object_id] for k in keys]


def test_dates_move_when_a_case_closes_and_a_child_dies(edrms_hub: EdrmsHub) -> None:
    hub = edrms_hub
    hub.pull()
    assert review_dates(hub, "ann_case")[0][0] is None  # adult with an open case
    assert review_dates(hub, "tom_id")[0][0] == date(2087, 4, 3)
    refresh_documents(hub.store, hub.settings)  # catch up on the events of the seeding
    ingest(hub, "episodes", hub.episodes["ann"][1], {
        "person": "C-1001", "service_area": "adults", "kind": "long_term_support", "start": "2021-03-01",
        "end": "2024-06-30", "team": "ASC-OPN", "allocated_worker": "Owen Price", "closure_reason": "moved away"})
    tom = person_payload("Tom", "Hale", date(2012, 4, 3), "male", nhs_number(2), "02", "LS1 4AP", "C-1002")
    ingest(hub, "people", "C-1002", {**tom, "death_date": "2024-02-10"})
    out = refresh_documents(hub.store, hub.settings)
    assert out["written"] >= 2
    (ann, _), (tom_date, tom_holds) = review_dates(hub, "ann_case", "tom_id")
    assert ann == date(2032, 6, 30)
    assert tom_date == date(2039, 2, 10) and tom_holds == ["IICSA"]
    assert refresh_documents(hub.store, hub.settings)["written"] == 0  # nothing new: nothing written


def test_the_report_lists_what_is_due_and_marks_what_is_held(edrms_hub: EdrmsHub,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    hub = edrms_hub
    hub.pull()
    refresh_documents(hub.store, hub.settings)
    ingest(hub, "episodes", hub.episodes["ann"][1], {
        "person": "C-1001", "service_area": "adults", "kind": "long_term_support", "start": "2021-03-01",
        "end": "2024-06-30", "team": "ASC-OPN", "allocated_worker": "Owen Price"})
    refresh_documents(hub.store, hub.settings)
    answer = hub.client.get("/api/documents/retention", params={"due_before": "2100-01-01"}, headers=hub.headers())
    assert answer.status_code == 200, answer.text
    rows = {r["object_id"]: r for r in answer.json()["documents"]}
    assert rows[hub.docs["ann_case"].object_id]["action"] == "review"
    assert rows[hub.docs["tom_id"].object_id]["action"] == "held"
    assert hub.docs["sky_nhs"].object_id not in rows  # sealed: not shown to records managers
    monkeypatch.setenv("CAREHUB_DATABASE_URL", hub.store.url)
    reload_settings()
    from edrms.cli import app

    result = CliRunner().invoke(app, ["retention-report", "--due-before", "2033-01-01", "--json"])
    monkeypatch.undo()
    reload_settings()
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert {r["object_id"]: r["action"] for r in body["documents"]} == {
        hub.docs["ann_case"].object_id: "review", hub.docs["ann_nhs"].object_id: "review"}
    assert all("title" not in r for r in body["documents"])


def test_a_merge_moves_documents_to_the_survivor_and_an_unmerge_gives_them_back(edrms_hub: EdrmsHub) -> None:
    from hub.store.merges import merge, unmerge

    hub = edrms_hub
    hub.pull()
    refresh_documents(hub.store, hub.settings)
    nora_doc = hub.client.get("/api/documents", params={"orphans": "true"}, headers=hub.headers()).json()
    nora_id = next(d["id"] for d in nora_doc["documents"] if "Nora" in d["title"])
    linked = hub.client.post(f"/api/documents/{nora_id}/links", headers=hub.headers(),
                             json={"person_id": hub.people["nora"], "reason": "Named in the title"})
    assert linked.status_code == 201
    with hub.store.session() as s:
        done = merge(s, hub.people["ann"], hub.people["tom"], "dq.hughes")
        merge(s, hub.people["ann"], hub.people["nora"], "dq.hughes")
        s.commit()
        merge_id = done.id
    refresh_documents(hub.store, hub.settings)
    with hub.store.session() as s:
        owners = {d.object_id: d.person_id for d in s.scalars(select(EdrmsDocument))}
    assert owners[hub.docs["tom_id"].object_id] == hub.people["ann"]  # pull-linked: resolved again
    assert owners[hub.docs["nora_none"].object_id] == hub.people["ann"]  # a manual link follows the merge
    with hub.store.session() as s:
        unmerge(s, merge_id, "dq.hughes")
        s.commit()
    refresh_documents(hub.store, hub.settings)
    with hub.store.session() as s:
        owners = {d.object_id: d.person_id for d in s.scalars(select(EdrmsDocument))}
    assert owners[hub.docs["tom_id"].object_id] == hub.people["tom"]  # given back to Tom
    assert owners[hub.docs["sky_nhs"].object_id] == hub.people["sealed"]
