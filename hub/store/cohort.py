"""The transitions cohort's facts: one narrow row per person, kept in step by the golden-record writer.

The due scan (:func:`hub.transitions.due.scan`) must not parse every young person's documents.
``transition_cohort`` holds, per person, what decides whether they are in the cohort and what
is due: the birth date (indexed: the scan is one range query on it), whether they have died or
been merged away, the disability flag, the kinds of open children's involvement that count
(looked after, child in need, care leaver, EHC plan) and their latest Transition (id, stage,
continuity flag, adult plan in place). Only :mod:`hub.store.writer` calls :func:`note_persons` and
:func:`refresh`, whenever it writes a Person, an Episode or a Transition, so the row always
follows the documents; :func:`rebuild` computes every row from the store (the migration's backfill
and ``carehub db rebuild-cohort``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Boolean, Date, Index, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.store.bulk import bulk_insert, bulk_update, chunks
from hub.store.tables import Base, Entity

# stages at which the adult plan is in place (children's services may then close: s66)
PLAN_IN_PLACE = frozenset({"plan_in_place", "closed"})
# the canonical entity types whose writes move a person's cohort facts
INVOLVEMENT_TYPES = ("Episode", "Transition")
FACT_TYPES = ("Person", *INVOLVEMENT_TYPES)


class CohortFacts(Base):
    """What puts one person in the transitions cohort, derived from their Person, Episodes and Transition."""

    __tablename__ = "transition_cohort"
    __table_args__ = (Index("ix_transition_cohort_birth_date", "birth_date"),)

    person_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    birth_date: Mapped[date | None] = mapped_column(Date)
    dead: Mapped[bool] = mapped_column(Boolean, default=False)
    merged: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    looked_after: Mapped[bool] = mapped_column(Boolean, default=False)
    child_in_need: Mapped[bool] = mapped_column(Boolean, default=False)
    care_leaver: Mapped[bool] = mapped_column(Boolean, default=False)
    ehc_plan: Mapped[bool] = mapped_column(Boolean, default=False)
    transition_id: Mapped[str | None] = mapped_column(String(36))
    stage: Mapped[str | None] = mapped_column(String(32))
    continuity_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    adult_plan: Mapped[bool] = mapped_column(Boolean, default=False)


PERSON_COLUMNS = ("birth_date", "dead", "merged", "disabled")
INVOLVEMENT_COLUMNS = ("looked_after", "child_in_need", "care_leaver", "ehc_plan", "transition_id", "stage",
                       "continuity_flag", "adult_plan")
COLUMNS = ("person_id", *PERSON_COLUMNS, *INVOLVEMENT_COLUMNS)
_NO_INVOLVEMENT: dict[str, Any] = {"looked_after": False, "child_in_need": False, "care_leaver": False,
                                   "ehc_plan": False, "transition_id": None, "stage": None,
                                   "continuity_flag": False, "adult_plan": False}
_NO_PERSON: dict[str, Any] = {"birth_date": None, "dead": False, "merged": False, "disabled": False}


def is_disabled(person: dict[str, Any]) -> bool:
    """A Person document records a disability (any code but ``NONE``)."""
    return any(code != "NONE" for code in person.get("disabilities", []))


def person_facts(person: dict[str, Any]) -> dict[str, Any]:
    """The cohort columns a Person document decides."""
    born = person.get("birth_date")
    return {"birth_date": date.fromisoformat(born[:10]) if born else None, "dead": bool(person.get("death_date")),
            "merged": bool(person.get("merged_into")), "disabled": is_disabled(person)}


def episode_flags(episodes: Iterable[dict[str, Any]]) -> dict[str, bool]:
    """The open children's involvement of the kinds that count, from a person's Episode documents."""
    flags = {"looked_after": False, "child_in_need": False, "care_leaver": False, "ehc_plan": False}
    for episode in episodes:
        if episode.get("service_area") != "childrens" or episode.get("end"):
            continue
        kind = episode.get("kind")
        if kind == "LAC":
            flags["looked_after"] = True
        elif kind == "CIN":
            flags["child_in_need"] = True
        elif kind == "care_leaver":
            flags["care_leaver"] = True
        elif kind == "ehc_plan":
            flags["ehc_plan"] = True
    return flags


def latest_transition(transitions: Iterable[tuple[str, dict[str, Any]]]) -> tuple[str | None, dict[str, Any]]:
    """A person's current Transition (the latest identified; the first written of equals): (id, document)."""
    best: tuple[str | None, dict[str, Any]] = (None, {})
    for entity_id, doc in transitions:
        if best[0] is None or doc.get("identified", "") > best[1].get("identified", ""):
            best = (entity_id, doc)
    return best


def involvement_facts(episodes: list[dict[str, Any]], transitions: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The cohort columns a person's Episodes and Transitions decide."""
    transition_id, transition = latest_transition(transitions)
    stage = transition.get("stage")
    return {**episode_flags(episodes), "transition_id": transition_id, "stage": stage,
            "continuity_flag": bool(transition.get("continuity_flag")), "adult_plan": stage in PLAN_IN_PLACE}


def _upsert(session: Session, rows: dict[str, dict[str, Any]], columns: tuple[str, ...],
            blank: dict[str, Any]) -> None:
    """Write ``columns`` of each person's row; a person without a row gets one (``blank`` for the rest)."""
    if not rows:
        return
    have: set[str] = set()
    for chunk in chunks(sorted(rows)):
        have.update(session.scalars(select(CohortFacts.person_id).where(CohortFacts.person_id.in_(chunk))))
    new = [[pid, *({**blank, **values}[c] for c in COLUMNS[1:])] for pid, values in rows.items() if pid not in have]
    changed = [{"person_id": pid, **{c: values[c] for c in columns}} for pid, values in rows.items() if pid in have]
    if new:
        bulk_insert(session, CohortFacts, COLUMNS, new)
    if changed:
        bulk_update(session, CohortFacts, changed)


def note_persons(session: Session, persons: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Keep the person columns of golden Persons (id, document) in step with their documents."""
    _upsert(session, {pid: person_facts(doc) for pid, doc in persons}, PERSON_COLUMNS, _NO_INVOLVEMENT)


def refresh(session: Session, person_ids: Iterable[str | None], *, persons: bool = False) -> None:
    """Recompute the involvement columns (and with ``persons`` the person columns) of these people from the
    Episodes and Transitions the store holds for them now (call it after writing them)."""
    ids = sorted({pid for pid in person_ids if pid})
    if not ids:
        return
    types = FACT_TYPES if persons else INVOLVEMENT_TYPES
    episodes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    transitions: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    people: dict[str, dict[str, Any]] = {}
    for chunk in chunks(ids):
        for pid, eid, etype, document in session.execute(
                select(Entity.person_id, Entity.id, Entity.entity_type, Entity.document)
                .where(Entity.person_id.in_(chunk), Entity.entity_type.in_(types))):
            if pid is None:
                continue
            if etype == "Episode":
                episodes[pid].append(orjson.loads(document))
            elif etype == "Transition":
                transitions[pid].append((eid, orjson.loads(document)))
            elif eid == pid:
                people[pid] = orjson.loads(document)
    _upsert(session, {pid: involvement_facts(episodes[pid], transitions[pid]) for pid in ids}, INVOLVEMENT_COLUMNS,
            _NO_PERSON)
    if persons:
        note_persons(session, people.items())


def rebuild(session: Session) -> int:
    """Compute every row from the store (backfill): one per Person and per person with an Episode or
    Transition. Returns how many rows it wrote."""
    session.execute(delete(CohortFacts))
    ids = [pid for (pid,) in session.execute(select(Entity.person_id).where(
        Entity.entity_type.in_(FACT_TYPES), Entity.person_id.is_not(None)).distinct())]
    for chunk in chunks(sorted(ids), 5000):
        refresh(session, chunk, persons=True)
    return len(ids)
