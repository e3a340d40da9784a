"""Generate the synthetic legacy ESCR: a council's old social-care database, dirt and all.

:func:`generate` writes the schema of :mod:`adapters.simulators.legacy_escr_schema`
to any SQLAlchemy URL and fills it with people of one synthetic town (Ashcombe):
families whose children are known to children's services, older people and
working-age adults known to adults' services, with their addresses,
relationships, referrals, assessments, episodes, care plans and costed services.
About ``dirt`` of all rows are deliberately bad in the ways real legacy data is
bad; every planted fault is listed in the returned :class:`GenerationSummary`, so
tests can check that the hub quarantines exactly what it should and cleans the rest.

The same seed always gives the same rows. :func:`touch` changes a few clients the
way day-to-day casework does (a move, a change of name) and moves their
``LAST_UPDATED`` on, for incremental-sync tests.

Run it as ``python -m adapters.simulators.legacy_escr --url sqlite:///var/legacy.db``.
"""

from __future__ import annotations

import argparse
import bisect
import random
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.schema import CreateTable

from adapters.simulators import legacy_escr_schema as schema
from adapters.simulators import uk_names as names
from adapters.simulators.legacy_escr_schema import Code
from hub.errors import ConfigError, SourceUnavailable
from hub.model.validators import is_valid_nhs_number, nhs_number_check_digit
from hub.store.addressing import Property, PropertyAddress, StreetDescriptor
from hub.store.db import Store, make_engine

if TYPE_CHECKING:
    from hub.settings import Settings

AS_OF = date(2025, 3, 31)
"""The day the synthetic extract was taken: no clean date in the data is later."""

GO_LIVE = date(2004, 4, 1)
"""The day the legacy ESCR went live; its history starts here."""

LEGACY_TIMEZONE = ZoneInfo("Europe/London")
"""The legacy system writes LAST_UPDATED as naive local time in this zone."""

DEFAULT_SEED = 20240401

RELATED_PER_PERSON = 4.0
"""Default average of related rows (addresses, relationships and casework) per person."""

# Related rows per person that do not depend on casework activity (addresses and
# relationships), and casework rows per person at activity 1.0; measured on 20,000 people.
_FIXED_PER_PERSON = 2.55
_CASEWORK_PER_PERSON = 2.9

_CHUNK = 20_000
_AS_OF = AS_OF.toordinal()
_GO_LIVE = GO_LIVE.toordinal()
_YEAR = 365.25
_LOOKUP_STAMP = datetime(2004, 3, 29, 9, 0)


class DirtKind(NamedTuple):
    """A kind of fault planted in the data, where it goes, and whether the hub must quarantine it."""

    name: str
    description: str
    quarantined: bool
    weight: float
    tables: dict[str, float]


DIRT_KINDS: tuple[DirtKind, ...] = (
    DirtKind("impossible_date", "a text date that is no date: 31/02/2010, 00/00/0000, month 13",
             True, 12, {"CLIENT": 4, "ASSESSMENT": 3, "PLAN_SERVICE": 3}),
    DirtKind("future_birth", "date of birth a century out (2091 for 1991), so in the future",
             True, 5, {"CLIENT": 1}),
    DirtKind("end_before_start", "an end or decision date before its start date",
             True, 12, {"INVOLVEMENT": 4, "CARE_PLAN": 3, "PLAN_SERVICE": 3, "REFERRAL": 2}),
    DirtKind("bad_nhs_check_digit", "an NHS number whose modulus-11 check digit is wrong",
             True, 10, {"CLIENT": 1}),
    DirtKind("missing_mandatory", "no surname on a client, no start date on a case record",
             True, 13, {"CLIENT": 4, "INVOLVEMENT": 3, "REFERRAL": 3, "ASSESSMENT": 3}),
    DirtKind("duplicate_verified_nhs", "a person typed in twice with the same verified NHS number",
             False, 7, {"CLIENT": 1}),
    DirtKind("duplicate_name_variant", "a person typed in twice, no NHS number, name slightly different",
             False, 8, {"CLIENT": 1}),
    DirtKind("padded_mixed_case", "padded or wrongly cased names, streets and postcodes",
             False, 23, {"CLIENT": 3, "CLIENT_ADDRESS": 2}),
    DirtKind("unknown_code", "a code that is in no lookup: gender X, episode type OLD...",
             True, 10, {"CLIENT": 3, "INVOLVEMENT": 3, "PLAN_SERVICE": 2, "CARE_PLAN": 2}),
)
DIRT_BY_NAME: dict[str, DirtKind] = {k.name: k for k in DIRT_KINDS}


@dataclass(frozen=True, slots=True)
class DirtyRow:
    """One planted fault: the table, the row's key (as the source id string) and the column."""

    table: str
    key: str
    column: str


@dataclass
class GenerationSummary:
    """What :func:`generate` wrote: row counts, and every planted fault by kind.

    ``rows`` counts every data table. ``total_rows`` counts the records a full sync
    of ``mappings/legacy_escr.yaml`` reads: one per stream row (deleted clients are
    filtered out; addresses travel inside their client's record; providers come
    from ``LK_PROVIDER``). ``quarantine_expected`` lists, per table, the source ids
    a correct sync must quarantine: rows with a quarantining fault, plus the rows
    that refer to a quarantined client or plan (their reference cannot be resolved).
    """

    seed: int
    people: int
    rows: dict[str, int]
    lookup_rows: dict[str, int]
    dirt: dict[str, list[DirtyRow]]
    duplicates: list[tuple[str, str]]
    deleted_clients: list[str]
    quarantine_expected: dict[str, list[str]]
    nhs_with_spaces: int

    @property
    def table_rows(self) -> int:
        """Rows in the data tables (lookups not counted)."""
        return sum(self.rows.values())

    @property
    def related_rows(self) -> int:
        """Rows in the data tables other than CLIENT: addresses, relationships and casework."""
        return self.table_rows - self.rows["CLIENT"]

    @property
    def total_rows(self) -> int:
        """Source records a full sync reads (the hub's raw records after one sync)."""
        return (self.table_rows - self.rows["CLIENT_ADDRESS"] - len(self.deleted_clients)
                + self.lookup_rows["LK_PROVIDER"])

    @property
    def dirt_counts(self) -> dict[str, int]:
        """Number of planted faults of each kind."""
        return {kind: len(rows) for kind, rows in self.dirt.items()}

    @property
    def dirty_rows(self) -> int:
        """Rows carrying a planted fault (each carries exactly one)."""
        return sum(self.dirt_counts.values())

    @property
    def dirt_rate(self) -> float:
        """Share of data-table rows that carry a planted fault."""
        return self.dirty_rows / self.table_rows if self.table_rows else 0.0

    def dirt_ids(self, kind: str, table: str | None = None) -> list[str]:
        """Source ids of the rows with fault ``kind`` (optionally only in ``table``)."""
        return [r.key for r in self.dirt[kind] if table is None or r.table == table]

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready digest: counts only, no names or numbers."""
        return {
            "seed": self.seed, "people": self.people, "rows": self.rows,
            "related_rows": self.related_rows, "source_records": self.total_rows,
            "dirt": self.dirt_counts,
            "dirt_rate": round(self.dirt_rate, 4), "deleted_clients": len(self.deleted_clients),
            "quarantine_expected": {t: len(ids) for t, ids in self.quarantine_expected.items()},
            "nhs_with_spaces": self.nhs_with_spaces,
        }


# --- small helpers ------------------------------------------------------------------------


def _text_date(ordinal: int) -> str:
    d = date.fromordinal(ordinal)
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def _parse_text_date(text: str) -> int:
    day, month, year = text.split("/")
    return date(int(year), int(month), int(day)).toordinal()


def _apportion(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``total`` by ``weights`` (largest remainder), at least one each when there is room."""
    keys = list(weights)
    floor_each = 1 if total >= len(keys) else 0
    rest = total - floor_each * len(keys)
    whole = sum(weights.values())
    shares = {k: rest * weights[k] / whole for k in keys}
    counts = {k: floor_each + int(shares[k]) for k in keys}
    left = total - sum(counts.values())
    for k in sorted(keys, key=lambda k: (-(shares[k] - int(shares[k])), keys.index(k)))[:left]:
        counts[k] += 1
    return counts


class _Weighted:
    """Weighted choice from a code list with precomputed cumulative weights."""

    def __init__(self, rng: random.Random, codes: Sequence[Code]) -> None:
        self._rng = rng
        self._codes = [c.code for c in codes]
        self._cum = list(accumulate(c.weight for c in codes))

    def pick(self) -> str:
        """One code, drawn by weight."""
        return self._codes[bisect.bisect(self._cum, self._rng.random() * self._cum[-1])]


@dataclass(slots=True)
class _Street:
    name: str
    locality: str
    postcodes: list[str]
    block: str | None
    next_no: int = 0
    next_flat: int = 0


_AddressParts = tuple[str | None, str | None, str | None, str, str, str, str]


@dataclass(slots=True)
class _Person:
    client_id: int
    sex: str
    born: int
    surname: str
    forenames: str
    row: dict[str, Any]
    died: int | None = None
    active: bool = False
    address_stamp: datetime | None = None


@dataclass(slots=True)
class _Provider:
    code: str
    name: str
    service_type: str
    rate_pence: int


# Service types an adults' support plan draws on, by client group, and their weekly shapes.
_OLDER_SERVICES = (("HC", 45), ("RES", 12), ("NUR", 8), ("DAY", 10), ("DP", 6), ("TEL", 12),
                   ("MEAL", 5), ("RESP", 2))
_WORKING_SERVICES = (("DP", 30), ("HC", 20), ("DAY", 25), ("RESP", 10), ("TEL", 5), ("RES", 10))
_RATE_PENCE = {"HC": (1850, 2450), "RES": (65000, 95000), "NUR": (85000, 130000),
               "DAY": (3500, 6000), "DP": (15000, 60000), "TEL": (350, 600),
               "RESP": (9500, 14000), "MEAL": (420, 550), "FOST": (45000, 90000)}
_HOME_CARE_HOURS = (3.5, 5.0, 7.0, 7.5, 10.0, 10.5, 14.0, 17.5, 21.0, 28.0)
_EPISODE_DAYS = {"CIN": (90, 700), "CP": (90, 600), "LAC": (180, 2500), "CL": (365, 2000),
                 "PF": (60, 400), "LTS": (180, 3000), "STS": (14, 56), "SG": (14, 120),
                 "CS": (180, 1500), "DOL": (90, 365)}
_PLAN_FOR = {"CIN": "CINP", "CP": "CPP", "LAC": "CARE", "CL": "PATH", "LTS": "SUPP", "CS": "CARR"}
_TEAMS_FOR = {"CIN": ("CF02", "CF03"), "CP": ("CF04",), "LAC": ("CF05",), "CL": ("CF06",),
              "PF": ("CF02", "CF03"), "STS": ("AD07",), "SG": ("AD06",), "CS": ("AD01",),
              "DOL": ("AD01",)}


# --- the builder ---------------------------------------------------------------------------


class _Builder:
    """Builds every row in memory from one seeded random stream, then plants the dirt."""

    def __init__(self, seed: int, people: int, activity: float,
                 addresses: Sequence[_AddressParts] = ()) -> None:
        self.rng = random.Random(seed)
        self.address_pool = list(addresses)
        self.rng.shuffle(self.address_pool)
        self.people = people
        self.activity = activity
        self.rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t, _ in schema.DATA_TABLES}
        self.next_id: dict[str, int] = {t.name: 1 for t, _ in schema.DATA_TABLES}
        self.next_id["CLIENT"] = 100_001
        self.persons: list[_Person] = []
        rng = self.rng
        self.ethnicity = _Weighted(rng, schema.ETHNICITIES)
        self.language = _Weighted(rng, schema.LANGUAGES)
        self.ref_source = _Weighted(rng, schema.REF_SOURCES)
        self.csc_reason = _Weighted(rng, schema.CSC_REASONS)
        self.asc_reason = _Weighted(rng, schema.ASC_REASONS)
        self.ref_outcome = _Weighted(rng, schema.REFERRAL_OUTCOMES)
        self.abuse = _Weighted(rng, schema.ABUSE_CATEGORIES)
        self.csc_end = _Weighted(rng, schema.CSC_END_REASONS)
        self.asc_end = _Weighted(rng, [c for c in schema.ASC_END_REASONS if c.code != "DIED"])
        self.legal = _Weighted(rng, schema.LEGAL_STATUSES)
        self.funding = _Weighted(rng, schema.FUNDING_CODES)
        self.older_services = _Weighted(rng, [Code(c, c, w) for c, w in _OLDER_SERVICES])
        self.working_services = _Weighted(rng, [Code(c, c, w) for c, w in _WORKING_SERVICES])
        self.surname_cum = list(accumulate(1 / (rank + 12) for rank in range(len(names.FAMILY_NAMES))))
        self._build_town()
        self._build_staff()
        self._build_providers()
        self._build_nhs_numbers()
        self.nhs_with_spaces = 0

    # -- reference data --

    def _build_town(self) -> None:
        rng = self.rng
        combos = [f"{stem} {suffix}" for stem in names.STREET_STEMS for suffix in names.STREET_SUFFIXES]
        chosen = rng.sample(combos, 320)
        used: set[str] = set()
        self.streets: list[_Street] = []
        for street in chosen:
            locality, district = names.LOCALITIES[rng.randrange(len(names.LOCALITIES))]
            postcodes = []
            for _ in range(rng.randint(1, 3)):
                while True:
                    letters = names.INWARD_LETTERS
                    pc = f"{district} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
                    if pc not in used:
                        used.add(pc)
                        postcodes.append(pc)
                        break
            block = rng.choice(names.BLOCK_NAMES) if rng.random() < 0.25 else None
            self.streets.append(_Street(street, locality, postcodes, block))

    def _build_staff(self) -> None:
        self.team_workers: dict[str, list[str]] = {}
        self.team_manager: dict[str, str] = {}
        for team in schema.TEAMS:
            staff = [self._full_name(self.rng.choice("MF"), self.rng.randint(1960, 1998))
                     for _ in range(self.rng.randint(4, 7))]
            self.team_manager[team.code] = staff[0]
            self.team_workers[team.code] = staff[1:]

    def _build_providers(self) -> None:
        rng = self.rng
        self.providers: dict[str, list[_Provider]] = {}
        number = 1
        for service_type, suffix in names.PROVIDER_KINDS:
            for _ in range(rng.randint(3, 6)):
                place = rng.choice([loc for loc, _ in names.LOCALITIES] + list(names.STREET_STEMS[:30]))
                low, high = _RATE_PENCE[service_type]
                rate = rng.randint(low // 5, high // 5) * 5
                provider = _Provider(f"P{number:04d}", f"{place} {suffix}", service_type, rate)
                self.providers.setdefault(service_type, []).append(provider)
                number += 1
        # A direct payment goes to the person, not a provider; the ledger still needs a code.
        low, high = _RATE_PENCE["DP"]
        self.providers["DP"] = [_Provider("DP00", "Direct payment to client", "DP",
                                          rng.randint(low // 100, high // 100) * 100)]

    def _build_nhs_numbers(self) -> None:
        # Unique prefixes in the 999 test range; those with no valid check digit are skipped.
        wanted = self.people + self.people // 5 + 50
        prefixes = self.rng.sample(range(1_000_000), min(1_000_000, int(wanted * 1.12)))
        pool = []
        for prefix in prefixes:
            first_nine = f"999{prefix:06d}"
            check = nhs_number_check_digit(first_nine)
            if check is not None:
                pool.append(f"{first_nine}{check}")
        self.nhs_pool = pool
        self.nhs_next = 0

    # -- names, dates, stamps --

    def _given(self, sex: str, year: int) -> str:
        era = bisect.bisect_right(names.ERA_BOUNDS, year)
        pool = names.GIVEN_MALE[era] if sex == "M" else names.GIVEN_FEMALE[era]
        first = self.rng.choice(pool)
        if self.rng.random() < 0.35:
            middle = self.rng.choice(pool)
            if middle != first:
                return f"{first} {middle}"
        return first

    def _surname(self) -> str:
        index = bisect.bisect(self.surname_cum, self.rng.random() * self.surname_cum[-1])
        return names.FAMILY_NAMES[index]

    def _full_name(self, sex: str, year: int) -> str:
        return f"{self._given(sex, year).split()[0]} {self._surname()}"

    def _stamp(self, ordinal: int, spread: int = 30) -> datetime:
        """A LAST_UPDATED a little after ``ordinal`` in office hours, never after the extract."""
        day = min(ordinal + self.rng.randint(0, spread), _AS_OF)
        return datetime.fromordinal(day) + timedelta(seconds=self.rng.randint(8 * 3600, 18 * 3600))

    def _born(self, min_age: float, max_age: float) -> int:
        return _AS_OF - self.rng.randint(int(min_age * _YEAR), int(max_age * _YEAR))

    def _count(self, mean: float) -> int:
        mean *= self.activity
        whole = int(mean)
        return whole + (1 if self.rng.random() < mean - whole else 0)

    # -- people and addresses --

    def _client(self, sex: str, born: int, surname: str, prev_surname: str | None = None) -> _Person:
        rng = self.rng
        client_id = self.next_id["CLIENT"]
        self.next_id["CLIENT"] = client_id + 1
        year = date.fromordinal(born).year
        forenames = self._given(sex, year)
        age = (_AS_OF - born) / _YEAR
        gender = sex
        roll = rng.random()
        if roll < 0.004:
            gender = "U"
        elif roll < 0.005:
            gender = "I"
        if age < 18:
            title = ("Master" if sex == "M" else "Miss") if rng.random() < 0.4 else None
        elif sex == "M":
            title = "Dr" if rng.random() < 0.01 else "Mr"
        else:
            title = "Mrs" if prev_surname else rng.choice(("Miss", "Ms"))
        nhs_no = verified = None
        if rng.random() < 0.8 and self.nhs_next < len(self.nhs_pool):
            nhs_no = self.nhs_pool[self.nhs_next]
            self.nhs_next += 1
            verified = "Y" if rng.random() < 0.8 else "N"
            if rng.random() < 0.15:
                nhs_no = f"{nhs_no[:3]} {nhs_no[3:6]} {nhs_no[6:]}"
                self.nhs_with_spaces += 1
        language = self.language.pick() if rng.random() > 0.04 else None
        row = {
            "CLIENT_ID": client_id, "FORENAMES": forenames, "SURNAME": surname,
            "PREV_SURNAME": prev_surname, "TITLE": title, "DOB": _text_date(born),
            "GENDER": gender, "NHS_NO": nhs_no, "NHS_VERIFIED": verified,
            "ETHNIC_CODE": self.ethnicity.pick() if rng.random() > 0.03 else None,
            "LANGUAGE": language,
            "INTERPRETER": "Y" if language not in (None, "ENG") and rng.random() < 0.5 else "N",
            "DATE_OF_DEATH": None, "RECORD_STATUS": "C", "LAST_UPDATED": None,
        }
        self.rows["CLIENT"].append(row)
        person = _Person(client_id, sex, born, surname, forenames, row)
        self.persons.append(person)
        return person

    def _new_address(self) -> _AddressParts:
        if self.address_pool:  # homes from the council's gazetteer, each household its own
            return self.address_pool.pop()
        rng = self.rng
        street = self.streets[rng.randrange(len(self.streets))]
        roll = rng.random()
        flat = house_no = house_name = None
        if roll < 0.12 and street.block:
            street.next_flat += 1
            flat, house_name = f"Flat {street.next_flat}", street.block
            postcode = street.postcodes[0]
        elif roll < 0.16:
            house_name = rng.choice(names.HOUSE_NAMES)
            postcode = street.postcodes[-1]
        else:
            street.next_no += rng.randint(1, 3)
            house_no = str(street.next_no)
            postcode = street.postcodes[(street.next_no // 40) % len(street.postcodes)]
        return (flat, house_no, house_name, street.name, street.locality, names.TOWN, postcode)

    def _address_row(self, person: _Person, address: _AddressParts, start: int, end: int | None) -> None:
        address_id = self.next_id["CLIENT_ADDRESS"]
        self.next_id["CLIENT_ADDRESS"] = address_id + 1
        flat, house_no, house_name, street, locality, town, postcode = address
        stamp = self._stamp(end or start)
        if person.address_stamp is None or stamp > person.address_stamp:
            person.address_stamp = stamp
        self.rows["CLIENT_ADDRESS"].append({
            "ADDRESS_ID": address_id, "CLIENT_ID": person.client_id, "ADDRESS_TYPE": "H",
            "FLAT": flat, "HOUSE_NO": house_no, "HOUSE_NAME": house_name, "STREET": street,
            "LOCALITY": locality, "TOWN": town, "POSTCODE": postcode,
            "START_DATE": _text_date(start), "END_DATE": _text_date(end) if end else None,
            "LAST_UPDATED": stamp,
        })

    def _house(self, members: list[_Person], earliest: int) -> None:
        """Give a household its current address and, for some, the one they moved from."""
        rng = self.rng
        moved_in = rng.randint(min(max(earliest, _GO_LIVE - 3650), _AS_OF - 30), _AS_OF - 30)
        current = self._new_address()
        former = None
        if rng.random() < 0.15:
            former_start = moved_in - rng.randint(365, 3650)
            former = (self._new_address(), former_start, moved_in - 1)
        for person in members:
            if former and person.born <= former[2]:
                self._address_row(person, former[0], max(former[1], person.born), former[2])
            self._address_row(person, current, max(moved_in, person.born), None)

    def _relationship(self, person: _Person, rel_type: str, *, related: _Person | None = None,
                      name: str | None = None, nok: bool = False, pr: bool = False,
                      start: int | None = None) -> None:
        rel_id = self.next_id["RELATIONSHIP"]
        self.next_id["RELATIONSHIP"] = rel_id + 1
        self.rows["RELATIONSHIP"].append({
            "REL_ID": rel_id, "CLIENT_ID": person.client_id,
            "RELATED_CLIENT_ID": related.client_id if related else None,
            "RELATED_NAME": name, "REL_TYPE": rel_type, "NOK_FLAG": "Y" if nok else "N",
            "PARENTAL_RESP": "Y" if pr else "N", "START_DATE": _text_date(start) if start else None,
            "END_DATE": None, "LAST_UPDATED": self._stamp(start or _GO_LIVE, 365),
        })

    # -- households --

    def add_family(self, room: int) -> list[_Person]:
        """Parents and children sharing a surname and an address; the children known to CSC."""
        rng = self.rng
        kids = min(room - 1, rng.choices((1, 2, 3, 4), (45, 33, 15, 7))[0]) if room > 1 else 1
        two_parents = room >= kids + 2 and rng.random() < 0.55
        surname = self._surname()
        eldest_age = rng.uniform(0.3, 17.9)
        ages = [eldest_age]
        for _ in range(kids - 1):
            ages.append(max(0.1, ages[-1] - rng.uniform(1.0, 4.0)))
        mother_age = eldest_age + rng.uniform(17, 40)
        lone_father = not two_parents and rng.random() < 0.12
        parents: list[_Person] = []
        if two_parents or not lone_father:
            maiden = self._surname() if two_parents and rng.random() < 0.6 else None
            parents.append(self._client("F", self._born(mother_age, mother_age + 0.99), surname, maiden))
        if two_parents or lone_father:
            father_age = mother_age + rng.uniform(-2, 6)
            parents.append(self._client("M", self._born(father_age, father_age + 0.99), surname))
        children = [self._client(rng.choice("MF"), self._born(age, age), surname) for age in ages]
        members = parents + children
        self._house(members, max(p.born for p in members) - 3650)
        if two_parents:
            self._relationship(parents[0], "SPO", related=parents[1], nok=True)
            self._relationship(parents[1], "SPO", related=parents[0], nok=True)
        absent_father = None
        if not two_parents and not lone_father and rng.random() < 0.5:
            absent_father = self._full_name("M", date.fromordinal(parents[0].born).year)
        for child in children:
            for parent in parents:
                self._relationship(child, "MOT" if parent.sex == "F" else "FAT", related=parent,
                                   nok=parent is parents[0], pr=True, start=child.born)
            if absent_father:
                self._relationship(child, "FAT", name=absent_father, pr=rng.random() < 0.5,
                                   start=child.born)
            for sibling in children:
                if sibling is not child:
                    self._relationship(child, "BRO" if sibling.sex == "M" else "SIS", related=sibling,
                                       start=max(child.born, sibling.born))
        if rng.random() < 0.75:
            for child in children:
                if rng.random() < 0.85:
                    self._casework(child, "CSC", self._count(1.3), child.born + 1)
        for parent in parents:
            if rng.random() < 0.06:
                self._casework(parent, "ASC", self._count(1.0), parent.born + int(18 * _YEAR))
        return members

    def add_older(self, room: int) -> list[_Person]:
        """An older person, or an older couple, known to adults' services."""
        rng = self.rng
        surname = self._surname()
        age = rng.triangular(65, 101, 84)
        couple = room >= 2 and rng.random() < 0.32
        first_sex = rng.choice("MF")
        prev = self._surname() if first_sex == "F" and rng.random() < 0.5 else None
        members = [self._client(first_sex, self._born(age, age + 0.99), surname, prev)]
        if couple:
            sex = ("F" if first_sex == "M" else "M") if rng.random() < 0.95 else first_sex
            other_age = max(60.0, age + rng.uniform(-6, 6))
            prev = self._surname() if sex == "F" and rng.random() < 0.5 else None
            members.append(self._client(sex, self._born(other_age, other_age + 0.99), surname, prev))
            self._relationship(members[0], "SPO", related=members[1], nok=True)
            self._relationship(members[1], "SPO", related=members[0], nok=True)
        self._house(members, max(p.born for p in members) + int(40 * _YEAR))
        for person in members:
            earliest_death = max(person.born + int(65 * _YEAR), _GO_LIVE + 365)
            if rng.random() < 0.07 and earliest_death < _AS_OF:
                person.died = rng.randint(earliest_death, _AS_OF)
                person.row["DATE_OF_DEATH"] = date.fromordinal(person.died)
            if rng.random() < 0.6:
                child_sex = rng.choice("MF")
                child_name = self._full_name(child_sex, date.fromordinal(person.born).year + 28)
                self._relationship(person, "SON" if child_sex == "M" else "DAU", name=child_name,
                                   nok=not couple)
            elif rng.random() < 0.25:
                self._relationship(person, rng.choice(("NEI", "FRI")),
                                   name=self._full_name(rng.choice("MF"), rng.randint(1940, 1990)))
            if person is members[0] or rng.random() < 0.7:
                self._casework(person, "ASC", self._count(1.35), person.born + int(60 * _YEAR))
        return members

    def add_working_age(self) -> list[_Person]:
        """A working-age adult: a care leaver, or someone known to adults' services."""
        rng = self.rng
        if rng.random() < 0.09:
            return [self._care_leaver()]
        sex = rng.choice("MF")
        person = self._client(sex, self._born(18, 64.9), self._surname())
        self._house([person], person.born + int(18 * _YEAR))
        if rng.random() < 0.45:
            rel = rng.choice(("MOT", "FAT", "SIS", "BRO", "FRI"))
            related_sex = "M" if rel in ("FAT", "BRO") else "F" if rel in ("MOT", "SIS") else rng.choice("MF")
            self._relationship(person, rel, nok=True,
                               name=self._full_name(related_sex, date.fromordinal(person.born).year - 25))
        if rng.random() < 0.65:
            self._casework(person, "ASC", self._count(1.2), person.born + int(18 * _YEAR))
        return [person]

    def _care_leaver(self) -> _Person:
        """A young adult who was looked after: a LAC episode to 18, then a leaving-care episode."""
        rng = self.rng
        person = self._client(rng.choice("MF"), self._born(18, 21.9), self._surname())
        eighteen = person.born + int(18 * _YEAR)
        self._house([person], eighteen)
        lac_start = max(_GO_LIVE, person.born + int(rng.uniform(8, 16.5) * _YEAR))
        self._cycle(person, "CSC", lac_start, eighteen - 1, eighteen - 1, last=False, force="LAC")
        self._cycle(person, "CSC", eighteen, _AS_OF, _AS_OF, last=True, force="CL")
        return person

    # -- casework: referral -> assessment -> episode -> plan -> services --

    def _casework(self, person: _Person, service: str, cycles: int, earliest: int) -> None:
        hi = person.died or _AS_OF
        lo = max(earliest, _GO_LIVE)
        if cycles == 0 or lo > hi - 30:
            return
        starts = sorted(self.rng.randint(lo, hi - 30) for _ in range(cycles))
        for i, start in enumerate(starts):
            last = i == cycles - 1
            cap = hi if last else max(start, starts[i + 1] - 1)
            self._cycle(person, service, start, cap, hi, last=last)

    def _pick_kind(self, person: _Person, service: str) -> str:
        roll = self.rng.random()
        if service == "CSC":
            return "CIN" if roll < 0.55 else "CP" if roll < 0.78 else "LAC" if roll < 0.95 else "PF"
        if (_AS_OF - person.born) / _YEAR >= 65:
            return "LTS" if roll < 0.62 else "STS" if roll < 0.82 else "SG" if roll < 0.92 else \
                "DOL" if roll < 0.96 else "CS"
        return "LTS" if roll < 0.55 else "STS" if roll < 0.68 else "SG" if roll < 0.83 else "CS"

    def _cycle(self, person: _Person, service: str, start: int, cap: int, hi: int, *,
               last: bool, force: str | None = None) -> None:
        """One piece of casework between ``start`` and ``cap`` (``hi`` bounds the open end)."""
        rng = self.rng
        kind = force or self._pick_kind(person, service)
        outcome = "ASMT" if force else self.ref_outcome.pick()
        decided = min(start + rng.randint(0, 7), cap)
        self._referral(person, service, start, decided, outcome, kind)
        if outcome != "ASMT":
            return
        team = self._team(person, kind)
        worker = rng.choice(self.team_workers[team])
        if kind == "CP":
            self._assessment(person, service, "S47", decided, min(decided + rng.randint(1, 14), cap),
                             None, "CP", worker)
        asmt_type = "SA" if service == "CSC" else {"SG": "SGE", "CS": "CA", "DOL": "MCA"}.get(kind, "NA")
        completed = decided + rng.randint(5, 45)
        if last and completed > hi and not force:
            self._assessment(person, service, asmt_type, decided, None, None, None, worker)
            person.active = True
            return
        completed = min(completed, cap)
        authorised = min(completed + rng.randint(0, 14), cap)
        no_need = not force and rng.random() < (0.13 if service == "CSC" else 0.12)
        result = "NFA" if no_need else {"CIN": "CIN", "CP": "CP", "LAC": "LAC", "PF": "CIN",
                                        "STS": "STS", "SG": "SGP", "CL": "LAC"}.get(kind, "LTS")
        self._assessment(person, service, asmt_type, decided, completed, authorised, result, worker)
        if no_need:
            return
        if kind == "LTS" and rng.random() < 0.4:
            self._assessment(person, service, "FA", completed, min(completed + rng.randint(7, 40), cap),
                             None, None, worker)
        low, high = _EPISODE_DAYS[kind]
        ep_start = authorised
        ep_end: int | None = min(ep_start + rng.randint(low, high), cap)
        died_then = person.died is not None and ep_end is not None and ep_end >= person.died
        if last and person.died is None and (ep_start + high // 2 > hi or rng.random() < 0.3):
            ep_end = None
            person.active = True
        self._episode(person, service, kind, team, worker, ep_start, ep_end, died_then)
        plan_type = _PLAN_FOR.get(kind)
        if plan_type and (kind != "LTS" or rng.random() < 0.85) and (kind != "CS" or rng.random() < 0.6):
            self._plan(person, service, plan_type, team, ep_start, ep_end, hi)

    def _team(self, person: _Person, kind: str) -> str:
        if kind == "LTS":
            age = (_AS_OF - person.born) / _YEAR
            if age >= 65:
                return self.rng.choice(("AD02", "AD03"))
            return self.rng.choice(("AD04", "AD05"))
        return self.rng.choice(_TEAMS_FOR[kind])

    def _referral(self, person: _Person, service: str, received: int, decided: int,
                  outcome: str, kind: str) -> None:
        ref_id = self.next_id["REFERRAL"]
        self.next_id["REFERRAL"] = ref_id + 1
        reason = self.csc_reason.pick() if service == "CSC" else self.asc_reason.pick()
        self.rows["REFERRAL"].append({
            "REF_ID": ref_id, "CLIENT_ID": person.client_id, "SERVICE": service,
            "REF_DATE": datetime.fromordinal(received) + timedelta(minutes=self.rng.randint(510, 1050)),
            "REF_SOURCE": self.ref_source.pick(), "REASON": reason, "OUTCOME": outcome,
            "DECISION_DATE": _text_date(decided), "LAST_UPDATED": self._stamp(decided),
        })

    def _assessment(self, person: _Person, service: str, asmt_type: str, start: int,
                    completed: int | None, authorised: int | None, outcome: str | None,
                    worker: str) -> None:
        rng = self.rng
        asmt_id = self.next_id["ASSESSMENT"]
        self.next_id["ASSESSMENT"] = asmt_id + 1
        factors = None
        eligible = None
        if asmt_type == "SA" and completed:
            factors = ",".join(rng.sample(schema.FACTORS, rng.randint(1, 4)))
        if asmt_type == "NA" and completed:
            eligible = "N" if outcome in ("NFA", "UNIV") else "Y"
        self.rows["ASSESSMENT"].append({
            "ASMT_ID": asmt_id, "CLIENT_ID": person.client_id, "SERVICE": service,
            "ASMT_TYPE": asmt_type, "START_DATE": _text_date(start),
            "COMPLETED_DATE": _text_date(completed) if completed else None,
            "AUTH_DATE": _text_date(authorised) if authorised else None,
            "OUTCOME": outcome, "ELIGIBLE": eligible, "FACTORS": factors, "WORKER_NAME": worker,
            "LAST_UPDATED": self._stamp(authorised or completed or start),
        })

    def _episode(self, person: _Person, service: str, kind: str, team: str, worker: str,
                 start: int, end: int | None, died: bool) -> None:
        inv_id = self.next_id["INVOLVEMENT"]
        self.next_id["INVOLVEMENT"] = inv_id + 1
        reason = None
        if end is not None:
            if died:
                reason = "DIED" if service == "ASC" else "RC7"
            elif kind == "LAC" and end >= person.born + int(18 * _YEAR) - 1:
                reason = "RC6"
            else:
                reason = self.csc_end.pick() if service == "CSC" else self.asc_end.pick()
        self.rows["INVOLVEMENT"].append({
            "INV_ID": inv_id, "CLIENT_ID": person.client_id, "SERVICE": service, "INV_TYPE": kind,
            "START_DT": datetime.fromordinal(start), "END_DT": datetime.fromordinal(end) if end else None,
            "TEAM_CODE": team, "WORKER_NAME": worker, "END_REASON": reason,
            "LEGAL_STATUS": self.legal.pick() if kind == "LAC" else None,
            "LAST_UPDATED": self._stamp(end or start),
        })

    def _plan(self, person: _Person, service: str, plan_type: str, team: str, ep_start: int,
              ep_end: int | None, hi: int) -> None:
        rng = self.rng
        plan_id = self.next_id["CARE_PLAN"]
        self.next_id["CARE_PLAN"] = plan_id + 1
        limit = ep_end if ep_end is not None else hi
        start = min(ep_start + rng.randint(0, 21), limit)
        roll = rng.random()
        if ep_end is not None:
            status = "CL" if roll < 0.95 else "CN"
        else:
            status = "AU" if roll < 0.88 else "AW" if roll < 0.95 else "DR"
        approved = min(start + rng.randint(0, 14), limit) if status in ("AU", "CL") else None
        approver = self.team_manager[team] if approved else None
        row = {
            "PLAN_ID": plan_id, "CLIENT_ID": person.client_id, "SERVICE": service,
            "PLAN_TYPE": plan_type, "START_DATE": date.fromordinal(start),
            "END_DATE": date.fromordinal(ep_end) if ep_end else None, "STATUS": status,
            "APPROVED_BY": approver, "APPROVED_DATE": date.fromordinal(approved) if approved else None,
            "BUDGET_PENCE": None, "ABUSE_CAT": self.abuse.pick() if plan_type == "CPP" else None,
            "LAST_UPDATED": self._stamp(ep_end or approved or start),
        }
        self.rows["CARE_PLAN"].append(row)
        if plan_type == "SUPP":
            older = (_AS_OF - person.born) / _YEAR >= 65
            chooser = self.older_services if older else self.working_services
            wanted = 1 + (rng.random() < 0.45) + (rng.random() < 0.15)
            types: list[str] = []
            for _ in range(wanted * 2):
                service_type = chooser.pick()
                if service_type not in types:
                    types.append(service_type)
                if len(types) == wanted:
                    break
        elif plan_type == "CARR":
            types = ["DP"]
        elif plan_type == "CARE" and rng.random() < 0.45:
            types = ["FOST"]
        else:
            types = []
        weekly = 0
        for service_type in types:
            weekly += self._service(person, plan_id, service, service_type, start, ep_end, hi,
                                    status, approver, approved)
        if service == "ASC" and types:
            row["BUDGET_PENCE"] = (weekly * 52 // 100 + rng.randint(0, 20)) * 100

    def _service(self, person: _Person, plan_id: int, service: str, service_type: str,
                 plan_start: int, plan_end: int | None, hi: int, plan_status: str,
                 approver: str | None, approved: int | None) -> int:
        rng = self.rng
        svc_id = self.next_id["PLAN_SERVICE"]
        self.next_id["PLAN_SERVICE"] = svc_id + 1
        limit = plan_end if plan_end is not None else hi
        start = min(plan_start + rng.randint(0, 10), limit)
        end = plan_end
        if end is None and rng.random() < 0.25:
            end = rng.randint(start, limit)
        status = "CL" if end is not None and plan_status in ("AU", "CL") else plan_status
        provider = rng.choice(self.providers[service_type])
        if service_type == "HC":
            units = rng.choice(_HOME_CARE_HOURS)
        elif service_type == "DAY":
            units = float(rng.randint(1, 5))
        elif service_type == "RESP":
            units = float(rng.randint(1, 3))
        elif service_type == "MEAL":
            units = float(rng.randint(5, 7))
        else:
            units = 1.0
        unit = next(c.extra for c in schema.SERVICE_TYPES if c.code == service_type)
        funding = self.funding.pick() if service == "ASC" else "LA"
        contribution = None
        if service == "ASC" and funding == "LA" and rng.random() < 0.6:
            contribution = f"{rng.randint(0, 25000) / 100:.2f}"
        self.rows["PLAN_SERVICE"].append({
            "SVC_ID": svc_id, "PLAN_ID": plan_id, "CLIENT_ID": person.client_id,
            "SERVICE_TYPE": service_type, "PROVIDER_CODE": provider.code,
            "PROVIDER_NAME": provider.name, "UNIT_COST": f"{provider.rate_pence / 100:.2f}",
            "UNIT": unit, "UNITS_PER_WEEK": units, "START_DATE": _text_date(start),
            "END_DATE": _text_date(end) if end else None, "STATUS": status,
            "APPROVED_BY": approver, "APPROVED_DATE": _text_date(approved) if approved else None,
            "CONTRIB_WEEKLY": contribution, "FUNDING": funding,
            "LAST_UPDATED": self._stamp(end or approved or start),
        })
        return int(provider.rate_pence * units)

    # -- the whole population --

    def populate(self) -> None:
        """Households until ``people`` distinct people exist, then client stamps and statuses."""
        rng = self.rng
        while len(self.persons) < self.people:
            room = self.people - len(self.persons)
            roll = rng.random()
            if roll < 0.22 and room >= 2:
                self.add_family(room)
            elif roll < 0.66:
                self.add_older(room)
            else:
                self.add_working_age()
        for person in self.persons:
            row = person.row
            row["RECORD_STATUS"] = "A" if person.active and person.died is None else "C"
            # Saving an address saves the client too, so the client's stamp is never older.
            moved = person.address_stamp or datetime.fromordinal(_GO_LIVE)
            stamp = datetime.fromordinal(rng.randint(max(person.born, moved.toordinal()), _AS_OF)) \
                + timedelta(seconds=rng.randint(8 * 3600, 18 * 3600))
            row["LAST_UPDATED"] = max(stamp, moved)

    def add_deleted(self) -> list[str]:
        """Clients 'created in error' and logically deleted (RECORD_STATUS D), each with an address."""
        deleted = []
        for _ in range(max(1, self.people // 250)):
            person = self._client(self.rng.choice("MF"), self._born(0, 90), self._surname())
            self.persons.pop()
            person.row["RECORD_STATUS"] = "D"
            self._address_row(person, self._new_address(), max(person.born, _GO_LIVE), None)
            moved = person.address_stamp or datetime.fromordinal(_GO_LIVE)
            person.row["LAST_UPDATED"] = max(self._stamp(_GO_LIVE, 7000), moved)
            deleted.append(str(person.client_id))
        return deleted


# --- dirt ----------------------------------------------------------------------------------


class _Dirt:
    """Plants each kind of fault on distinct rows and records where it went."""

    def __init__(self, builder: _Builder, dirt: float) -> None:
        self.b = builder
        self.rng = builder.rng
        self.rows = builder.rows
        clean_total = sum(len(r) for r in self.rows.values())
        self.quota = _apportion(round(dirt * clean_total), {k.name: k.weight for k in DIRT_KINDS})
        self.found: dict[str, list[DirtyRow]] = {k.name: [] for k in DIRT_KINDS}
        self.taken: set[tuple[str, int]] = set()
        self.protected: set[int] = set()
        self.q_clients: set[int] = set()
        self.q_plans: set[int] = set()
        self.duplicates: list[tuple[str, str]] = []
        self.deleted: set[int] = set()
        self.current_address: dict[int, dict[str, Any]] = {}

    def plant(self, deleted: list[str]) -> None:
        """Duplicates first, then client faults, then faults in the rows that refer to clients."""
        self.deleted = {int(d) for d in deleted}
        self.current_address = {r["CLIENT_ID"]: r for r in self.rows["CLIENT_ADDRESS"]
                                if r["END_DATE"] is None}
        for kind in ("duplicate_verified_nhs", "duplicate_name_variant"):
            self._duplicates(kind, self.quota[kind])
        per_table = {k.name: _apportion(self.quota[k.name], k.tables) for k in DIRT_KINDS
                     if not k.name.startswith("duplicate")}
        # Parents before children, so no fault lands on a row already lost with its client or plan.
        for table, _ in schema.DATA_TABLES:
            for kind, tables in per_table.items():
                if table.name in tables:
                    self._plant(kind, table.name, tables[table.name])

    # -- choosing rows --

    def _eligible(self, kind: str, table: str, row: dict[str, Any]) -> bool:
        key = row[_KEYS[table]]
        if (table, key) in self.taken:
            return False
        if table == "CLIENT":
            if key in self.protected or row["RECORD_STATUS"] == "D":
                return False
        elif row["CLIENT_ID"] in self.q_clients or row["CLIENT_ID"] in self.protected \
                or row["CLIENT_ID"] in self.deleted:
            return False
        if table == "PLAN_SERVICE" and row["PLAN_ID"] in self.q_plans:
            return False
        return _FITS[(kind, table)](row)

    def _choose(self, kind: str, table: str, count: int) -> list[dict[str, Any]]:
        rows = self.rows[table]
        chosen: list[dict[str, Any]] = []
        if not rows or count <= 0:
            return chosen
        attempts = 0
        while len(chosen) < count and attempts < count * 40 + 200:
            attempts += 1
            row = rows[self.rng.randrange(len(rows))]
            if self._eligible(kind, table, row):
                self.taken.add((table, row[_KEYS[table]]))
                chosen.append(row)
        if len(chosen) < count:
            for row in rows:
                if len(chosen) == count:
                    break
                if self._eligible(kind, table, row):
                    self.taken.add((table, row[_KEYS[table]]))
                    chosen.append(row)
        return chosen

    def _record(self, kind: str, table: str, row: dict[str, Any], column: str) -> None:
        key = row[_KEYS[table]]
        self.found[kind].append(DirtyRow(table, str(key), column))
        if DIRT_BY_NAME[kind].quarantined:
            if table == "CLIENT":
                self.q_clients.add(key)
            elif table == "CARE_PLAN":
                self.q_plans.add(key)

    # -- the faults --

    def _plant(self, kind: str, table: str, count: int) -> None:
        rng = self.rng
        for row in self._choose(kind, table, count):
            column = _COLUMNS[(kind, table)]
            if kind == "impossible_date":
                year = int(row[column][6:])
                row[column] = rng.choice((f"31/02/{year}", f"30/02/{year}", f"31/04/{year}",
                                          f"31/09/{year}", f"31/11/{year}", "00/00/0000",
                                          f"{row[column][:2]}/{rng.randint(13, 19)}/{year}"))
            elif kind == "future_birth":
                row[column] = f"{row[column][:6]}{int(row[column][6:]) + 100}"
            elif kind == "end_before_start":
                self._end_before_start(table, row)
            elif kind == "bad_nhs_check_digit":
                digits = row[column].replace(" ", "")
                wrong = (int(digits[9]) + rng.randint(1, 9)) % 10
                bad = f"{digits[:9]}{wrong}"
                row[column] = f"{bad[:3]} {bad[3:6]} {bad[6:]}" if " " in row[column] else bad
            elif kind == "missing_mandatory":
                # Text columns get the empty strings legacy screens saved; DATETIME ones a NULL.
                text_column = table in ("CLIENT", "ASSESSMENT")
                row[column] = rng.choice((None, "", "  ")) if text_column else None
            elif kind == "padded_mixed_case":
                column = self._pad(table, row)
            elif kind == "unknown_code":
                row[column] = rng.choice(schema.UNKNOWN_CODES[column])
            self._record(kind, table, row, column)

    def _end_before_start(self, table: str, row: dict[str, Any]) -> None:
        back = self.rng.randint(1, 400)
        if table == "INVOLVEMENT":
            row["END_DT"] = row["START_DT"] - timedelta(days=back)
        elif table == "CARE_PLAN":
            row["END_DATE"] = row["START_DATE"] - timedelta(days=back)
            if row["STATUS"] in ("AU", "AW", "DR"):
                row["STATUS"] = "CL"
        elif table == "PLAN_SERVICE":
            row["END_DATE"] = _text_date(_parse_text_date(row["START_DATE"]) - back)
        else:
            row["DECISION_DATE"] = _text_date(row["REF_DATE"].toordinal() - back)

    def _pad(self, table: str, row: dict[str, Any]) -> str:
        rng = self.rng
        if table == "CLIENT":
            column = rng.choice(("SURNAME", "SURNAME", "FORENAMES", "GENDER"))
            value = row[column]
            if column == "GENDER":
                row[column] = value.lower()
            else:
                row[column] = rng.choice((f"  {value.lower()} ", value.upper(), f" {value}  "))
            return column
        column = rng.choice(("STREET", "POSTCODE", "POSTCODE"))
        value = row[column]
        if column == "STREET":
            row[column] = f"  {value.upper()} "
        else:
            row[column] = rng.choice((value.lower(), value.replace(" ", ""), f" {value.lower().replace(' ', '')} "))
        return column

    def _duplicates(self, kind: str, count: int) -> None:
        """Type some people in a second time, as a new client with a new id."""
        rng = self.rng
        b = self.b
        verified = kind == "duplicate_verified_nhs"
        candidates = [p for p in b.persons if p.client_id not in self.protected
                      and (not verified or (p.row["NHS_NO"] and p.row["NHS_VERIFIED"] == "Y"))
                      and p.died is None]
        for original in rng.sample(candidates, min(count, len(candidates))):
            self.protected.add(original.client_id)
            row = dict(original.row)
            client_id = b.next_id["CLIENT"]
            b.next_id["CLIENT"] = client_id + 1
            row["CLIENT_ID"] = client_id
            row["RECORD_STATUS"] = "A"
            row["LAST_UPDATED"] = original.row["LAST_UPDATED"] + timedelta(days=rng.randint(1, 200))
            if row["LAST_UPDATED"] > datetime.fromordinal(_AS_OF + 1):
                row["LAST_UPDATED"] = datetime.fromordinal(_AS_OF) + timedelta(hours=17)
            if verified:
                digits = row["NHS_NO"].replace(" ", "")
                row["NHS_NO"] = digits if " " in row["NHS_NO"] else f"{digits[:3]} {digits[3:6]} {digits[6:]}"
                column = "NHS_NO"
            else:
                row["NHS_NO"] = row["NHS_VERIFIED"] = None
                column = self._vary_name(row)
            b.rows["CLIENT"].append(row)
            self.protected.add(client_id)
            self.taken.add(("CLIENT", client_id))
            self.found[kind].append(DirtyRow("CLIENT", str(client_id), column))
            self.duplicates.append((str(client_id), str(original.client_id)))
            copy = _Person(client_id, original.sex, original.born, row["SURNAME"], row["FORENAMES"], row)
            address = self.current_address[original.client_id]
            start = _parse_text_date(address["START_DATE"])
            b._address_row(copy, (address["FLAT"], address["HOUSE_NO"], address["HOUSE_NAME"],
                                  address["STREET"], address["LOCALITY"], address["TOWN"],
                                  address["POSTCODE"]), start, None)
            row["LAST_UPDATED"] = max(row["LAST_UPDATED"], copy.address_stamp)
            if rng.random() < 0.5:
                service = "CSC" if (_AS_OF - original.born) / _YEAR < 18 else "ASC"
                received = rng.randint(max(start, _AS_OF - 700), _AS_OF - 1)
                b._referral(copy, service, received, min(received + rng.randint(0, 7), _AS_OF),
                            rng.choice(("NFA", "SIGN", "INFO")), "CIN")

    def _vary_name(self, row: dict[str, Any]) -> str:
        rng = self.rng
        given = row["FORENAMES"].split()
        surname = row["SURNAME"]
        options = []
        if given[0] in names.NICKNAMES:
            options.append("nickname")
        if len(given) > 1:
            options.append("middle")
        swaps = [i for i in range(1, len(surname) - 2) if surname[i] != surname[i + 1]]
        if len(surname) >= 5 and "'" not in surname and swaps:
            options.append("typo")
        choice = rng.choice(options or ["initial"])
        if choice == "nickname":
            row["FORENAMES"] = " ".join([names.NICKNAMES[given[0]], *given[1:]])
            return "FORENAMES"
        if choice == "middle":
            row["FORENAMES"] = given[0]
            return "FORENAMES"
        if choice == "typo":
            i = rng.choice(swaps)
            row["SURNAME"] = surname[:i] + surname[i + 1] + surname[i] + surname[i + 2:]
            return "SURNAME"
        row["FORENAMES"] = given[0][0]
        return "FORENAMES"

    # -- consequences --

    def expected_quarantine(self) -> dict[str, list[str]]:
        """Rows a correct sync quarantines: planted faults plus rows whose references fail."""
        q_clients = self.q_clients
        q_plans = set(self.q_plans)
        expected: dict[str, list[str]] = {}
        planted = {(r.table, r.key) for k in DIRT_KINDS if k.quarantined for r in self.found[k.name]}
        for table, key in schema.DATA_TABLES:
            if table.name == "CLIENT_ADDRESS":
                continue
            if table.name == "CARE_PLAN":
                q_plans |= {r["PLAN_ID"] for r in self.rows["CARE_PLAN"] if r["CLIENT_ID"] in q_clients}
            ids = []
            for row in self.rows[table.name]:
                k = row[key]
                if (table.name, str(k)) in planted \
                        or (table.name != "CLIENT" and row["CLIENT_ID"] in q_clients) \
                        or (table.name == "RELATIONSHIP" and row["RELATED_CLIENT_ID"] in q_clients) \
                        or (table.name == "PLAN_SERVICE" and row["PLAN_ID"] in q_plans):
                    ids.append(str(k))
            expected[table.name] = ids
        return expected


_KEYS = {table.name: key for table, key in schema.DATA_TABLES}

_COLUMNS: dict[tuple[str, str], str] = {
    ("impossible_date", "CLIENT"): "DOB",
    ("impossible_date", "ASSESSMENT"): "START_DATE",
    ("impossible_date", "PLAN_SERVICE"): "START_DATE",
    ("future_birth", "CLIENT"): "DOB",
    ("end_before_start", "INVOLVEMENT"): "END_DT",
    ("end_before_start", "CARE_PLAN"): "END_DATE",
    ("end_before_start", "PLAN_SERVICE"): "END_DATE",
    ("end_before_start", "REFERRAL"): "DECISION_DATE",
    ("bad_nhs_check_digit", "CLIENT"): "NHS_NO",
    ("missing_mandatory", "CLIENT"): "SURNAME",
    ("missing_mandatory", "INVOLVEMENT"): "START_DT",
    ("missing_mandatory", "REFERRAL"): "REF_DATE",
    ("missing_mandatory", "ASSESSMENT"): "START_DATE",
    ("padded_mixed_case", "CLIENT"): "SURNAME",
    ("padded_mixed_case", "CLIENT_ADDRESS"): "POSTCODE",
    ("unknown_code", "CLIENT"): "GENDER",
    ("unknown_code", "INVOLVEMENT"): "INV_TYPE",
    ("unknown_code", "PLAN_SERVICE"): "SERVICE_TYPE",
    ("unknown_code", "CARE_PLAN"): "STATUS",
}


def _always(_row: dict[str, Any]) -> bool:
    return True


_FITS: dict[tuple[str, str], Callable[[dict[str, Any]], bool]] = {
    **{key: _always for key in _COLUMNS},
    ("future_birth", "CLIENT"): lambda row: int(row["DOB"][6:]) >= 1940,
    ("bad_nhs_check_digit", "CLIENT"): lambda row: bool(row["NHS_NO"]),
}


# --- writing -------------------------------------------------------------------------------


@contextmanager
def _legacy_database(url: str) -> Iterator[Engine]:
    """An engine on ``url``; the one place database errors become hub errors."""
    try:
        engine = make_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"not a usable database URL for the legacy ESCR: {exc}") from exc
    try:
        yield engine
    except SQLAlchemyError as exc:
        raise SourceUnavailable(f"the legacy ESCR database failed: {exc.__class__.__name__}") from exc
    finally:
        engine.dispose()


def _lookup_rows() -> dict[str, list[dict[str, Any]]]:
    stamp = _LOOKUP_STAMP
    return {
        "LK_ETHNICITY": [{"CODE": c.code, "DESCRIPTION": c.description, "NHS_CODE": c.extra,
                          "ACTIVE": "Y", "LAST_UPDATED": stamp} for c in schema.ETHNICITIES],
        "LK_REL_TYPE": [{"CODE": c.code, "DESCRIPTION": c.description, "ACTIVE": "Y",
                         "LAST_UPDATED": stamp} for c in schema.REL_TYPES],
        "LK_INV_TYPE": [{"CODE": c.code, "SERVICE": c.extra, "DESCRIPTION": c.description,
                         "ACTIVE": "Y", "LAST_UPDATED": stamp} for c in schema.INV_TYPES],
        "LK_SERVICE_TYPE": [{"CODE": c.code, "DESCRIPTION": c.description, "UNIT": c.extra,
                             "ACTIVE": "Y", "LAST_UPDATED": stamp} for c in schema.SERVICE_TYPES],
        "LK_REF_SOURCE": [{"CODE": c.code, "DESCRIPTION": c.description, "ACTIVE": "Y",
                           "LAST_UPDATED": stamp} for c in schema.REF_SOURCES],
    }


def _write(conn: Connection, table_rows: dict[str, list[dict[str, Any]]]) -> None:
    tables = {t.name: t for t in schema.metadata.sorted_tables}
    for name in [t.name for t in schema.metadata.sorted_tables]:
        rows = table_rows.get(name, [])
        for i in range(0, len(rows), _CHUNK):
            conn.execute(insert(tables[name]), rows[i:i + _CHUNK])


def generate(url: str, *, people: int = 2000, seed: int = DEFAULT_SEED, dirt: float = 0.03,
             related_per_person: float | None = None,
             addresses: Sequence[_AddressParts] = ()) -> GenerationSummary:
    """Write a fresh synthetic legacy ESCR of ``people`` people to ``url``; return what was planted.

    Existing ESCR tables at ``url`` are dropped first. ``dirt`` is the share of
    rows given a planted fault; ``related_per_person`` (default about 4) sets how
    many address, relationship and casework rows each person has on average.
    ``addresses`` (flat, house number, house name, street, locality, town,
    postcode) are homes to use before inventing any: the demo passes the
    gazetteer's, so people live at addresses the council's LLPG knows.
    """
    if people < 1:
        raise ConfigError("people must be at least 1")
    if not 0 <= dirt < 0.5:
        raise ConfigError("dirt is a share of rows between 0 and 0.5")
    target = RELATED_PER_PERSON if related_per_person is None else related_per_person
    activity = max(0.0, (target - _FIXED_PER_PERSON) / _CASEWORK_PER_PERSON)
    builder = _Builder(seed, people, activity, addresses)
    builder.populate()
    deleted = builder.add_deleted()
    planter = _Dirt(builder, dirt)
    planter.plant(deleted)
    lookups = _lookup_rows()
    lookups["LK_TEAM"] = [
        {"TEAM_CODE": c.code, "TEAM_NAME": c.description, "SERVICE": c.extra,
         "MANAGER_NAME": builder.team_manager[c.code], "ACTIVE": "Y", "LAST_UPDATED": _LOOKUP_STAMP}
        for c in schema.TEAMS
    ]
    lookups["LK_PROVIDER"] = [
        {"PROVIDER_CODE": p.code, "PROVIDER_NAME": p.name, "SERVICE_TYPE": p.service_type,
         "ADDRESS": None, "CQC_LOCATION": f"1-{100000000 + int(p.code[1:]) * 7919}"
         if p.code.startswith("P") else None, "ACTIVE": "Y", "LAST_UPDATED": _LOOKUP_STAMP}
        for providers in builder.providers.values() for p in providers
    ]
    with _legacy_database(url) as engine:
        schema.metadata.drop_all(engine)
        with engine.begin() as conn:
            # Tables bare, rows in, then the indexes: building an index once beats updating it per row.
            for table in schema.metadata.sorted_tables:
                conn.execute(CreateTable(table))
            _write(conn, {**lookups, **builder.rows})
            for index in schema.INDEXES:
                index.create(conn)
    return GenerationSummary(
        seed=seed, people=people,
        rows={name: len(rows) for name, rows in builder.rows.items()},
        lookup_rows={name: len(rows) for name, rows in lookups.items()},
        dirt=planter.found, duplicates=planter.duplicates, deleted_clients=deleted,
        quarantine_expected=planter.expected_quarantine(),
        nhs_with_spaces=builder.nhs_with_spaces,
    )


# --- touching ------------------------------------------------------------------------------

_DATE_TEXT = re.compile(r"^\d{2}/\d{2}/\d{4}$")
_POSTCODE = re.compile(r"^AS\d \d[A-Z]{2}$")


def _clean_client(row: Any) -> bool:
    """True for a client the hub will accept, so a touch shows up as an update, not a quarantine."""
    if row.RECORD_STATUS == "D" or not (row.SURNAME or "").strip():
        return False
    if (row.GENDER or "").strip().upper() not in ("M", "F", "U", "I"):
        return False
    if not row.DOB or not _DATE_TEXT.match(row.DOB):
        return False
    try:
        born = _parse_text_date(row.DOB)
    except ValueError:
        return False
    if born > date.today().toordinal():
        return False
    return not row.NHS_NO or is_valid_nhs_number(row.NHS_NO.replace(" ", ""))


def touch(url: str, *, count: int, seed: int) -> list[str]:
    """Change ``count`` clean clients (a move or a change of surname) and bump their LAST_UPDATED.

    Returns the changed CLIENT_IDs as strings, sorted. The new LAST_UPDATED is now
    in London time (naive, like the legacy system) and later than every stamp
    already in CLIENT and CLIENT_ADDRESS, so an incremental read picks them up.
    """
    rng = random.Random(seed)
    client, address = schema.CLIENT, schema.CLIENT_ADDRESS
    with _legacy_database(url) as engine, engine.begin() as conn:
        rows = conn.execute(select(client).order_by(client.c.CLIENT_ID)).all()
        clean = [r for r in rows if _clean_client(r)]
        if count > len(clean):
            raise ConfigError(f"asked to touch {count} clients but only {len(clean)} are clean")
        chosen = sorted(rng.sample(clean, count), key=lambda r: r.CLIENT_ID)
        latest = max(
            conn.execute(select(func.max(client.c.LAST_UPDATED))).scalar_one(),
            conn.execute(select(func.max(address.c.LAST_UPDATED))).scalar_one(),
        )
        now = datetime.now(LEGACY_TIMEZONE).replace(tzinfo=None, microsecond=0)
        stamp = max(now, latest + timedelta(seconds=1))
        today = now.date().toordinal()
        streets = conn.execute(
            select(address.c.STREET, address.c.LOCALITY, address.c.TOWN, address.c.POSTCODE)
            .where(address.c.HOUSE_NO.is_not(None)).order_by(address.c.ADDRESS_ID).limit(2000)
        ).all()
        streets = [s for s in streets if s.STREET.strip() == s.STREET and _POSTCODE.match(s.POSTCODE)]
        next_address = (conn.execute(select(func.max(address.c.ADDRESS_ID))).scalar_one() or 0) + 1
        for row in chosen:
            if rng.random() < 0.5:
                old = row.SURNAME.strip()
                new = rng.choice([n for n in names.FAMILY_NAMES[:120] if n.lower() != old.lower()])
                conn.execute(update(client).where(client.c.CLIENT_ID == row.CLIENT_ID)
                             .values(PREV_SURNAME=old, SURNAME=new, LAST_UPDATED=stamp))
                continue
            # The old address ends yesterday, or today if the client already moved in today.
            current = (address.c.CLIENT_ID == row.CLIENT_ID) & address.c.END_DATE.is_(None)
            moved_today = address.c["START_DATE"] == _text_date(today)
            conn.execute(update(address).where(current & ~moved_today)
                         .values(END_DATE=_text_date(today - 1), LAST_UPDATED=stamp))
            conn.execute(update(address).where(current & moved_today)
                         .values(END_DATE=_text_date(today), LAST_UPDATED=stamp))
            street = rng.choice(streets)
            conn.execute(insert(address).values(
                ADDRESS_ID=next_address, CLIENT_ID=row.CLIENT_ID, ADDRESS_TYPE="H", FLAT=None,
                HOUSE_NO=str(rng.randint(1, 300)), HOUSE_NAME=None, STREET=street.STREET,
                LOCALITY=street.LOCALITY, TOWN=street.TOWN, POSTCODE=street.POSTCODE,
                START_DATE=_text_date(today), END_DATE=None, LAST_UPDATED=stamp))
            next_address += 1
            conn.execute(update(client).where(client.c.CLIENT_ID == row.CLIENT_ID)
                         .values(LAST_UPDATED=stamp))
    return [str(r.CLIENT_ID) for r in chosen]


def seed_demo(settings: Settings) -> str:
    """The `carehub demo` seeder: write the legacy ESCR where the ``legacy_escr`` source reads it.

    When the hub's store already holds a gazetteer (the gazetteer seeder runs
    first), households live at its residential addresses.
    """
    source = settings.sources.get("legacy_escr")
    if source is None or "url" not in source.options:
        raise ConfigError("the demo needs [sources.legacy_escr.options] url to seed the legacy ESCR")
    url = str(source.options["url"]).format(data_dir=settings.data_dir)
    homes = gazetteer_homes(settings.database_url)
    summary = generate(url, people=settings.demo.people, addresses=homes)
    where = f", {len(homes):,} gazetteer homes to live in" if homes else ""
    return (f"seeded legacy ESCR: {summary.people:,} people, {summary.table_rows:,} rows, "
            f"{summary.dirty_rows:,} with planted faults{where}")


def gazetteer_homes(database_url: str) -> list[_AddressParts]:
    """Approved residential addresses of live properties in the hub's gazetteer, as a legacy form would hold them."""
    store = Store(database_url)
    lpi, prop, street = PropertyAddress, Property, StreetDescriptor
    query = (
        select(lpi.sao_text, lpi.pao_start_number, lpi.pao_start_suffix, lpi.pao_text, street.descriptor,
               street.locality, street.town, lpi.postcode)
        .join(prop, prop.uprn == lpi.uprn).join(street, street.usrn == lpi.usrn)
        .where(lpi.logical_status == 1, prop.logical_status == 1, prop.blpu_class.like("R%"),
               lpi.end_date.is_(None), lpi.postcode.is_not(None))
        .order_by(lpi.uprn)
    )
    try:
        with store.session() as session:
            rows = session.execute(query).all()
    except SQLAlchemyError:
        return []  # no gazetteer tables yet: the generator invents its own town
    finally:
        store.dispose()
    homes: list[_AddressParts] = []
    for sao, number, suffix, pao_text, descriptor, locality, town, postcode in rows:
        house_no = f"{number}{suffix or ''}" if number is not None else None
        homes.append((sao.title() if sao else None, house_no, pao_text.title() if pao_text else None,
                      descriptor.title(), (locality or "").title(), (town or names.TOWN).title(), str(postcode)))
    return homes


# --- module entry point --------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Generate a legacy ESCR from the command line and print the summary's counts as JSON."""
    import json

    parser = argparse.ArgumentParser(prog="python -m adapters.simulators.legacy_escr",
                                     description="Write a synthetic legacy ESCR database.")
    parser.add_argument("--url", default="sqlite:///var/legacy.db", help="SQLAlchemy URL to write to")
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--dirt", type=float, default=0.03)
    parser.add_argument("--related-per-person", type=float, default=None)
    args = parser.parse_args(argv)
    summary = generate(args.url, people=args.people, seed=args.seed, dirt=args.dirt,
                       related_per_person=args.related_per_person)
    print(json.dumps(summary.as_json(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
