"""Who is due: the scan finds the synthetic young people at the right milestones and flags the overdue."""

from __future__ import annotations

from datetime import date, timedelta

from adapters.simulators.childrens_case import ChildrensCaseSystem
from hub.pipeline import Pipeline
from hub.settings import TransitionSettings
from hub.store.db import Store
from hub.sync import sync_source
from hub.transitions.due import birthday, milestones_for, scan, school_year_start
from tests.support.transitions import TODAY, born, rest_source


def test_milestone_dates() -> None:
    assert birthday(date(2008, 3, 10), 0, 210) == date(2025, 9, 10)  # 17 years 6 months
    assert birthday(date(2008, 2, 29), 18) == date(2026, 3, 1)
    assert school_year_start(date(2010, 10, 5), 9) == date(2024, 9, 1)  # turns 14 in Year 9
    assert school_year_start(date(2011, 3, 5), 9) == date(2024, 9, 1)
    assert school_year_start(date(2011, 9, 1), 9) == date(2025, 9, 1)
    stones = {m.name: m for m in milestones_for(date(2008, 3, 10), ["ehc_plan"], None, date(2025, 10, 1),
                                                TransitionSettings())}
    assert stones["transition_assessment"].overdue and not stones["adult_support_in_place"].overdue
    assert stones["year_11_phase_transfer"].due == date(2024, 3, 31)  # Year 11 is 2023-24
    assert stones["support_to_25_ends"].due == date(2033, 3, 10)


def test_the_scan_finds_the_cohort_at_its_milestones(store: Store, children: ChildrensCaseSystem) -> None:
    ids = {
        "looked_after_15": children.add_child(birth_date=born(15), lac="N1"),
        "disabled_cin_17_8": children.add_child(birth_date=born(17, 240), cin="N2", disabilities=["LD"]),
        "cin_16_no_disability": children.add_child(birth_date=born(16), cin="N3"),
        "looked_after_13": children.add_child(birth_date=born(13), lac="N1"),
        "care_leaver_20": children.add_child(birth_date=born(20), care_leaver=True),
        "ehcp_19": children.add_child(birth_date=born(19), ehcp=True, cin="N2", closed=True),
        "care_leaver_26": children.add_child(birth_date=born(26), care_leaver=True),
        "closed_lac_15": children.add_child(birth_date=born(15), lac="N1", closed=True),
    }
    sync_source(store, rest_source(children, "childrens_case", "childrens_case.yaml"), Pipeline(), batch_size=50)
    with store.session() as s:
        person_of = {cid: pid for pid, cid in _hub_ids(s).items()}
        entries = {e.person_id: e for e in scan(s, TODAY, TransitionSettings())}
    found = {name for name, cid in ids.items() if person_of[cid] in entries}
    assert found == {"looked_after_15", "disabled_cin_17_8", "care_leaver_20", "ehcp_19"}

    def entry(name: str):  # type: ignore[no-untyped-def]
        return entries[person_of[ids[name]]]

    assert entry("looked_after_15").involvement == ["LAC"] and not entry("looked_after_15").overdue
    assert entry("disabled_cin_17_8").involvement == ["CIN_DISABLED"]
    overdue = {m.name for m in entry("disabled_cin_17_8").milestones if m.overdue}
    assert overdue == {"transition_assessment"}
    assert {m.name for m in entry("care_leaver_20").milestones if m.overdue} == {
        "transition_assessment", "adult_support_in_place"}
    assert "pfa_reviews_from_year_9" in {m.name for m in entry("ehcp_19").milestones}
    with store.session() as s:
        soon = {e.person_id for e in scan(s, TODAY, TransitionSettings(), due_before=TODAY)}
        later = {e.person_id for e in scan(s, TODAY, TransitionSettings(), due_before=TODAY + timedelta(days=1100))}
    assert person_of[ids["looked_after_15"]] not in soon and person_of[ids["looked_after_15"]] in later
    assert person_of[ids["disabled_cin_17_8"]] in soon
    with store.session() as s:
        ordered = scan(s, TODAY, TransitionSettings())
    assert [e.overdue for e in ordered] == sorted((e.overdue for e in ordered), reverse=True)


def _hub_ids(session) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from hub.store.tables import PersonIdentifier
    return {pid: value for pid, value in session.execute(
        select(PersonIdentifier.person_id, PersonIdentifier.value).where(PersonIdentifier.system == "childrens_case"))}
