"""Who is due: young people with children's social care involvement approaching adult services.

The cohort (``transitions.md``, Care Act s58 and the SEND Code of Practice): people aged
``from_age`` (14 by default) and over with an open children's involvement of one of these
kinds -

* looked after (an open ``LAC`` episode), until 18;
* a child in need with a disability (an open ``CIN`` episode and a disability code), until 18;
* a care leaver (an open ``care_leaver`` episode), until ``to_age`` (25);
* an EHC plan (an open ``ehc_plan`` episode), until ``to_age`` (25).

Each gets milestones with due dates: the Preparing for Adulthood reviews from the start of
Year 9 (EHC plans), the Year 11 phase transfer by 31 March, the transition assessment by
17 years 6 months at the latest, adult support in place by 18 (past it with no adult plan,
children's services continue under s66: the continuity flag), the EHC plan's end by 25.
A milestone is *met* when the person's Transition has passed it; an unmet one past its date
is *overdue*.

:func:`cohort_of` decides for one person (the access rule for the ``transitions_worker``
role asks it too); :func:`scan` reads the cohort's facts (:mod:`hub.store.cohort`) once for everyone of
cohort age.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from hub.settings import TransitionSettings
from hub.store.cohort import PLAN_IN_PLACE, CohortFacts, episode_flags, is_disabled

# stages at or after which each milestone counts as met
ASSESSED = frozenset({"referral_requested", "received", "assessment", "eligible", "not_eligible", "plan_in_place",
                      "closed"})
UNDER_18_KINDS = ("LAC", "CIN_DISABLED")
TO_25_KINDS = ("care_leaver", "ehc_plan")


def birthday(born: date, years: int, months: int = 0) -> date:
    """The day a person reaches an age (29 February birthdays fall on 1 March in other years)."""
    month0 = born.month - 1 + months
    year, month = born.year + years + month0 // 12, month0 % 12 + 1
    try:
        return born.replace(year=year, month=month)
    except ValueError:
        return date(year, month, 28) if month != 2 else date(year, 3, 1)


def age_on(born: date, day: date) -> int:
    """Whole years of age on a day."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def school_year_start(born: date, year_group: int) -> date:
    """1 September of the school year a child born on ``born`` is in ``year_group`` (England: the cohort runs
    1 September to 31 August; Year N is the year in which the child turns N + 5)."""
    cohort = born.year if born.month >= 9 else born.year - 1
    return date(cohort + year_group + 5, 9, 1)


@dataclass(slots=True)
class Milestone:
    """One milestone of a young person's move to adult services."""

    name: str
    due: date
    met: bool = False
    overdue: bool = False


@dataclass(slots=True)
class DueEntry:
    """A young person in the transitions cohort, with why and what is due."""

    person_id: str
    birth_date: date
    age: int
    involvement: list[str]
    milestones: list[Milestone] = field(default_factory=list)
    transition_id: str | None = None
    stage: str | None = None
    continuity_flag: bool = False

    @property
    def overdue(self) -> bool:
        """True when any milestone is overdue."""
        return any(m.overdue for m in self.milestones)

    @property
    def next_due(self) -> date | None:
        """The earliest milestone not yet met."""
        return min((m.due for m in self.milestones if not m.met), default=None)

    def as_json(self) -> dict[str, Any]:
        """The entry as the API answers it."""
        body = asdict(self)
        body["overdue"] = self.overdue
        body["next_due"] = self.next_due
        return orjson.loads(orjson.dumps(body))


def kinds_of(disabled: bool, flags: dict[str, Any]) -> list[str]:
    """The involvement kinds that count (before the age test), from a person's disability and open children's
    involvement (:func:`hub.store.cohort.episode_flags`)."""
    kinds = []
    if flags.get("looked_after"):
        kinds.append("LAC")
    if flags.get("child_in_need") and disabled:
        kinds.append("CIN_DISABLED")
    if flags.get("care_leaver"):
        kinds.append("care_leaver")
    if flags.get("ehc_plan"):
        kinds.append("ehc_plan")
    return sorted(kinds)


def involvement_of(person: dict[str, Any], episodes: list[dict[str, Any]]) -> list[str]:
    """The kinds of open children's involvement that put a person in the cohort (before the age test)."""
    return kinds_of(is_disabled(person), episode_flags(episodes))


def kinds_in_cohort(involved: list[str], age: int, settings: TransitionSettings, stage: str | None) -> list[str]:
    """Of the involvement kinds, those that hold a person of this age in the cohort (empty: not in it)."""
    if age < settings.from_age or age >= settings.to_age:
        return []
    kinds = [k for k in involved if k in TO_25_KINDS or age < 18]
    if stage and stage not in PLAN_IN_PLACE:
        kinds = kinds or involved or ["transition"]
    return kinds


def cohort_of(person: dict[str, Any], episodes: list[dict[str, Any]], today: date,
              settings: TransitionSettings, stage: str | None = None) -> list[str]:
    """The involvement kinds that put this person in the transitions cohort today (empty: not in it).

    A young person whose transition is under way and not yet at the adult plan stays in the cohort
    past 18 (children's services continue under s66), as ``transition`` when nothing else holds them.
    """
    born = person.get("birth_date")
    if not born or person.get("death_date"):
        return []
    return kinds_in_cohort(involvement_of(person, episodes), age_on(date.fromisoformat(born), today), settings,
                           stage)


def milestones_for(born: date, involvement: list[str], stage: str | None, today: date,
                   settings: TransitionSettings) -> list[Milestone]:
    """The milestones of one young person, met and overdue as of ``today``."""
    stage = stage or ""
    made: list[Milestone] = []
    if "ehc_plan" in involvement:
        made.append(Milestone("pfa_reviews_from_year_9", school_year_start(born, 9), met=True))
        transfer = date(school_year_start(born, 11).year + 1, 3, 31)
        made.append(Milestone("year_11_phase_transfer", transfer, met=today > transfer))
    made.append(Milestone("transition_assessment", birthday(born, 0, settings.assessment_by_months),
                          met=stage in ASSESSED))
    made.append(Milestone("adult_support_in_place", birthday(born, 18), met=stage in PLAN_IN_PLACE))
    if any(k in TO_25_KINDS for k in involvement):
        made.append(Milestone("support_to_25_ends", birthday(born, settings.to_age), met=False))
    for m in made:
        m.overdue = not m.met and m.due < today and m.name != "support_to_25_ends"
    return made


def scan(session: Session, today: date, settings: TransitionSettings, *,
         due_before: date | None = None) -> list[DueEntry]:
    """Everyone in the cohort today (with a milestone due on or before ``due_before``, when given), overdue first
    then by the next date due.

    One range query on birth date over the cohort's facts (``transition_cohort``, kept in step with the
    Person, Episode and Transition documents by the golden-record writer: :mod:`hub.store.cohort`),
    narrowed in SQL to people with an involvement that counts or a transition without the adult plan;
    the age rules (:func:`kinds_in_cohort`) and milestones are then worked out from those rows. No
    document is read.
    """
    oldest = birthday(today, -settings.to_age)
    youngest = birthday(today, -settings.from_age)
    f = CohortFacts
    rows = session.execute(select(
        f.person_id, f.birth_date, f.disabled, f.looked_after, f.child_in_need, f.care_leaver, f.ehc_plan,
        f.transition_id, f.stage, f.continuity_flag).where(
        f.birth_date > oldest, f.birth_date <= youngest, f.dead.is_(False), f.merged.is_(False),
        or_(f.looked_after.is_(True), and_(f.child_in_need.is_(True), f.disabled.is_(True)),
            f.care_leaver.is_(True), f.ehc_plan.is_(True),
            and_(f.transition_id.is_not(None), f.adult_plan.is_(False)))))
    found = []
    for (person_id, born, disabled, looked_after, child_in_need, care_leaver, ehc_plan, transition_id, stage,
         continuity) in rows:
        if born is None:  # the query's birth-date range admits none; the guard narrows the type
            continue
        involved = kinds_of(disabled, {"looked_after": looked_after, "child_in_need": child_in_need,
                                       "care_leaver": care_leaver, "ehc_plan": ehc_plan})
        age = age_on(born, today)
        kinds = kinds_in_cohort(involved, age, settings, stage)
        if not kinds:
            continue
        entry = DueEntry(person_id=person_id, birth_date=born, age=age, involvement=kinds,
                         transition_id=transition_id, stage=stage, continuity_flag=bool(continuity))
        entry.milestones = milestones_for(born, kinds, stage, today, settings)
        if due_before is not None and not any(not m.met and m.due <= due_before for m in entry.milestones):
            continue
        found.append(entry)
    found.sort(key=lambda e: (not e.overdue, e.next_due or date.max, e.person_id))
    return found
