"""The cohort's facts (``transition_cohort``) follow every write the due scan depends on, and a rebuild agrees."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.model import Episode, Person, Transition
from hub.settings import TransitionSettings
from hub.store.cohort import COLUMNS, CohortFacts, rebuild
from hub.store.db import Store
from hub.store.merges import merge, unmerge
from hub.store.writer import Provenance, write_canonical
from hub.transitions.due import scan
from tests.support.transitions import TODAY, born


def _person(session: Any, pid: str, years: int, **extra: Any) -> None:
    write_canonical(session, Person(id=pid, names=[{"family": "Testperson", "given": ["Sam"]}],
                                    birth_date=born(years), **extra), Provenance("test", "people", pid))


def _episode(session: Any, key: str, pid: str, kind: str, **extra: Any) -> None:
    write_canonical(session, Episode(person_id=pid, service_area="childrens", kind=kind, start=born(2), **extra),
                    Provenance("test", "episodes", key))


def _due(store: Store) -> dict[str, Any]:
    with store.session() as s:
        return {e.person_id: e for e in scan(s, TODAY, TransitionSettings())}


def _rows(store: Store) -> list[tuple[Any, ...]]:
    with store.session() as s:
        return [tuple(getattr(r, c) for c in COLUMNS)
                for r in s.scalars(select(CohortFacts).order_by(CohortFacts.person_id))]


def test_the_facts_follow_episodes_persons_and_transitions(store: Store) -> None:
    a, b, c = ("00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b",
               "00000000-0000-4000-8000-00000000000c")
    with store.session() as s:
        _episode(s, "lac-a", a, "LAC")  # the episode before its person: the row waits for the birth date
        _person(s, a, 15)
        _person(s, b, 16)
        _episode(s, "cin-b", b, "CIN")
        _person(s, c, 19)
        _episode(s, "leaver-c", c, "care_leaver")
    due = _due(store)
    assert set(due) == {a, c} and due[a].involvement == ["LAC"]
    with store.session() as s:
        _person(s, b, 16, disabilities=["LD"])  # a disabled child in need now counts
        _episode(s, "lac-a", a, "LAC", end=TODAY)  # the looked-after episode closes
        _person(s, c, 19, death_date=TODAY)
    due = _due(store)
    assert set(due) == {b} and due[b].involvement == ["CIN_DISABLED"]
    with store.session() as s:  # a transition under way keeps a person past the episode's end
        write_canonical(s, Transition(person_id=a, stage="assessment", identified=TODAY),
                        Provenance("test", "transitions", "t-a"))
    assert _due(store)[a].involvement == ["transition"] and _due(store)[a].stage == "assessment"
    with store.session() as s:
        write_canonical(s, Transition(person_id=a, stage="plan_in_place", identified=TODAY),
                        Provenance("test", "transitions", "t-a"))
    assert set(_due(store)) == {b}
    kept = _rows(store)
    with store.session() as s:
        rebuild(s)
    assert _rows(store) == kept


def test_a_merge_moves_the_involvement_and_unmerge_puts_it_back(store: Store) -> None:
    kept, gone = "00000000-0000-4000-8000-0000000000d1", "00000000-0000-4000-8000-0000000000d2"
    with store.session() as s:
        _person(s, kept, 15)
        _person(s, gone, 15)
        _episode(s, "lac-gone", gone, "LAC")
    assert set(_due(store)) == {gone}
    with store.session() as s:
        merge_id = merge(s, kept, gone, "tester").id
    assert set(_due(store)) == {kept}
    with store.session() as s:
        unmerge(s, merge_id, "tester")
    assert set(_due(store)) == {gone}
    rows = _rows(store)
    with store.session() as s:
        rebuild(s)
    assert _rows(store) == rows
