"""Labelled synthetic people and their messy duplicates, for evaluating and benchmarking matching.

Everyone here is invented: names drawn from ``data/synthetic_names.csv`` with
realistic frequencies (a long tail of surnames), addresses on made-up streets
with UK-shaped postcodes, NHS numbers from the 999 test range. Duplicates carry
the errors real systems make: typos, nicknames, initials, swapped given and
family names, married names, moved house, abbreviations, transposed day and
month, one-digit date typos, missing fields. The population deliberately holds
the hard negatives: twins (same birth date, surname and address) and a parent
and child with the same name at the same address.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from hub.identity.nicknames import are_nicknames, nickname_groups
from hub.identity.record import CSV_COLUMNS
from hub.model.validators import nhs_number_check_digit

NAMES_FILE = Path(__file__).resolve().parent / "data" / "synthetic_names.csv"
_STREET_WORDS = (
    "High Street",
    "Church Road",
    "Station Road",
    "Park Avenue",
    "Mill Lane",
    "Victoria Road",
    "Green Lane",
    "Manor Close",
    "Queens Drive",
    "Kings Road",
    "The Crescent",
    "School Lane",
    "Oak Grove",
    "Chapel Street",
    "Albert Terrace",
    "Springfield Gardens",
    "Moor View",
)
_STREET_NAMES = (
    "Ash",
    "Beech",
    "Cedar",
    "Elm",
    "Hawthorn",
    "Holly",
    "Larch",
    "Maple",
    "Rowan",
    "Willow",
    "Meadow",
    "Bank",
    "Hill",
    "Brook",
    "Heath",
    "Cliff",
    "Ings",
    "Carr",
    "Fold",
    "Garth",
)
_TOWNS = {
    "LS": "Leeds",
    "BD": "Bradford",
    "HX": "Halifax",
    "WF": "Wakefield",
    "HD": "Huddersfield",
    "S": "Sheffield",
    "YO": "York",
    "HG": "Harrogate",
    "OL": "Oldham",
    "M": "Manchester",
}
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_ABBREVIATIONS = {
    "Street": "St",
    "Road": "Rd",
    "Avenue": "Ave",
    "Lane": "Ln",
    "Close": "Cl",
    "Drive": "Dr",
    "Gardens": "Gdns",
    "Terrace": "Ter",
    "Grove": "Gr",
}
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


@dataclass(frozen=True, slots=True)
class SyntheticPerson:
    """One invented person: the truth their records are noisy copies of."""

    person_id: str
    given_name: str
    family_name: str
    sex: str
    birth_date: date
    address_line: str
    locality: str
    postcode: str
    nhs_number: str
    twin_of: str | None = None
    parent_of: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorRates:
    """How often each kind of error is made when a person's record is typed again."""

    nickname: float = 0.10
    given_typo: float = 0.07
    given_initial: float = 0.03
    given_missing: float = 0.02
    family_typo: float = 0.07
    family_married: float = 0.04
    family_missing: float = 0.01
    swapped_names: float = 0.02
    date_transposed: float = 0.03
    date_digit: float = 0.04
    date_missing: float = 0.03
    sex_missing: float = 0.05
    sex_wrong: float = 0.01
    moved: float = 0.15
    line_missing: float = 0.08
    line_abbreviated: float = 0.25
    postcode_typo: float = 0.03
    postcode_missing: float = 0.05
    nhs_missing: float = 1.0


def _load_names() -> dict[str, tuple[list[str], list[float]]]:
    names: dict[str, tuple[list[str], list[float]]] = {}
    with NAMES_FILE.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            values, weights = names.setdefault(row["kind"], ([], []))
            values.append(row["name"])
            weights.append(float(row["weight"]))
    return names


def _title(name: str) -> str:
    return name[:1].upper() + name[1:]


def _typo(text: str, rng: random.Random) -> str:
    """One keyboard slip: substitute, delete, insert or swap neighbouring letters."""
    if len(text) < 3:
        return text + rng.choice(_KEYBOARD)
    i = rng.randrange(1, len(text))
    kind = rng.random()
    if kind < 0.3:
        return text[:i] + rng.choice(_KEYBOARD) + text[i + 1 :]
    if kind < 0.55:
        return text[:i] + text[i + 1 :]
    if kind < 0.8:
        return text[:i] + rng.choice(_KEYBOARD) + text[i:]
    if i < len(text) - 1:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i] + text[i] + text[i:]


def invented_nhs_number(rng: random.Random) -> str:
    """A valid NHS number from the 999 test range, never issued to anyone."""
    while True:
        nine = "999" + "".join(rng.choice("0123456789") for _ in range(6))
        check = nhs_number_check_digit(nine)
        if check is not None:
            return nine + str(check)


class Population:
    """Invents people (with twins and same-name parents) and their records."""

    def __init__(self, seed: int = 0, rates: ErrorRates | None = None) -> None:
        self.rng = random.Random(seed)
        self.rates = rates or ErrorRates()
        self.names = _load_names()
        self.nicknames: dict[str, list[str]] = {}
        for name, formals in nickname_groups().items():
            for formal in formals:
                if name != formal:
                    self.nicknames.setdefault(formal, []).append(name)
        self._serial = 0
        self._postcodes: list[tuple[str, str, str]] = []

    def _name(self, kind: str) -> str:
        values, weights = self.names[kind]
        return self.rng.choices(values, weights)[0]

    def _address(self) -> tuple[str, str, str]:
        """A house on a street; a postcode covers one street and is shared by several houses."""
        rng = self.rng
        if not self._postcodes or rng.random() < 0.15:
            area = rng.choice(list(_TOWNS))
            postcode = (
                f"{area}{rng.randint(1, 29)} {rng.randint(0, 9)}"
                f"{rng.choice(_INWARD_LETTERS)}{rng.choice(_INWARD_LETTERS)}"
            )
            street = f"{rng.choice(_STREET_NAMES)} {rng.choice(_STREET_WORDS).split()[-1]}"
            self._postcodes.append((postcode, street, _TOWNS[area]))
        postcode, street, town = rng.choice(self._postcodes)
        return f"{rng.randint(1, 180)} {street}", town, postcode

    def _next_id(self) -> str:
        self._serial += 1
        return f"P{self._serial:08d}"

    def people(
        self, count: int, twin_share: float = 0.01, parent_share: float = 0.01
    ) -> list[SyntheticPerson]:
        """``count`` people; some are twins or parent and child sharing a name and home."""
        rng = self.rng
        out: list[SyntheticPerson] = []
        while len(out) < count:
            sex = rng.choice(("male", "female"))
            born = date(1925, 1, 1) + timedelta(days=rng.randrange(0, 365 * 97))
            line, town, postcode = self._address()
            person = SyntheticPerson(
                self._next_id(),
                _title(self._name(sex)),
                _title(self._name("family")),
                sex,
                born,
                line,
                town,
                postcode,
                invented_nhs_number(rng),
            )
            out.append(person)
            roll = rng.random()
            if roll < twin_share and len(out) < count:
                twin_sex = rng.choice(("male", "female"))
                given = person.given_name
                # Parents do not call twins by two forms of one name (Harry and Henry).
                while given.lower() == person.given_name.lower() or are_nicknames(
                    given.lower(), person.given_name.lower()
                ):
                    given = _title(self._name(twin_sex))
                out.append(
                    replace(
                        person,
                        person_id=self._next_id(),
                        given_name=given,
                        sex=twin_sex,
                        nhs_number=invented_nhs_number(rng),
                        twin_of=person.person_id,
                    )
                )
            elif roll < twin_share + parent_share and len(out) < count and born.year < 1990:
                child_born = born + timedelta(days=rng.randrange(365 * 18, 365 * 40))
                if child_born.year < 2022:
                    out.append(
                        replace(
                            person,
                            person_id=self._next_id(),
                            birth_date=child_born,
                            sex=person.sex,
                            nhs_number=invented_nhs_number(rng),
                            parent_of=None,
                        )
                    )
                    out[-2] = replace(person, parent_of=out[-1].person_id)
        return out

    def record(self, person: SyntheticPerson, record_id: str, noisy: bool = True) -> dict[str, str]:
        """One record of ``person`` as a system holds it; ``noisy`` applies the error rates."""
        rng, r = self.rng, self.rates
        given, family = person.given_name, person.family_name
        born: date | None = person.birth_date
        line, town, postcode = person.address_line, person.locality, person.postcode
        sex = "M" if person.sex == "male" else "F"
        nhs: str | None = person.nhs_number
        if noisy:
            nicks = self.nicknames.get(given.lower())
            roll = rng.random()
            if nicks and roll < r.nickname:
                given = _title(rng.choice(nicks))
            elif roll < r.nickname + r.given_typo:
                given = _title(_typo(given.lower(), rng))
            elif roll < r.nickname + r.given_typo + r.given_initial:
                given = given[0]
            elif roll < r.nickname + r.given_typo + r.given_initial + r.given_missing:
                given = ""
            roll = rng.random()
            if roll < r.family_typo:
                family = _title(_typo(family.lower(), rng))
            elif roll < r.family_typo + r.family_married and person.sex == "female":
                family = _title(self._name("family"))
            elif roll < r.family_typo + r.family_married + r.family_missing:
                family = ""
            if rng.random() < r.swapped_names:
                given, family = family, given
            roll = rng.random()
            truth = person.birth_date
            if roll < r.date_transposed and truth.day <= 12 and truth.day != truth.month:
                born = date(truth.year, truth.day, truth.month)
            elif roll < r.date_transposed + r.date_digit:
                born = _digit_typo(truth, rng)
            elif roll < r.date_transposed + r.date_digit + r.date_missing:
                born = None
            roll = rng.random()
            if roll < r.sex_missing:
                sex = ""
            elif roll < r.sex_missing + r.sex_wrong:
                sex = "F" if sex == "M" else "M"
            if rng.random() < r.moved:
                line, town, postcode = self._address()
            if rng.random() < r.line_abbreviated:
                for word, short in _ABBREVIATIONS.items():
                    line = line.replace(word, short)
            if rng.random() < r.line_missing:
                line = ""
            roll = rng.random()
            if roll < r.postcode_typo:
                postcode = postcode[:-1] + rng.choice(_INWARD_LETTERS)
            elif roll < r.postcode_typo + r.postcode_missing:
                postcode = ""
            if rng.random() < r.nhs_missing:
                nhs = None
            if rng.random() < 0.3:
                family = family.upper()
        return {
            "id": record_id,
            "given_name": given,
            "family_name": family,
            "birth_date": born.isoformat() if born else "",
            "sex": sex,
            "address_line": line,
            "locality": town,
            "postcode": postcode if rng.random() > 0.3 else postcode.replace(" ", ""),
            "nhs_number": nhs or "",
        }


def _digit_typo(born: date, rng: random.Random) -> date:
    """The same date with one digit of YYYYMMDD mistyped (only if still a real date)."""
    text = born.strftime("%Y%m%d")
    for _ in range(20):
        i = rng.choice((2, 3, 4, 5, 6, 7))
        candidate = text[:i] + rng.choice("0123456789") + text[i + 1 :]
        if candidate == text:
            continue
        try:
            return date(int(candidate[:4]), int(candidate[4:6]), int(candidate[6:]))
        except ValueError:
            continue
    return born


@dataclass(frozen=True, slots=True)
class LinkageTask:
    """Two files to link and the true pairs between them; who is a twin or parent of whom."""

    left: list[dict[str, str]]
    right: list[dict[str, str]]
    truth: set[tuple[str, str]]
    relatives: set[tuple[str, str]]


def linkage_task(
    left_size: int,
    right_size: int,
    overlap: float = 0.6,
    seed: int = 0,
    with_nhs: bool = False,
    rates: ErrorRates | None = None,
) -> LinkageTask:
    """Two files: ``overlap`` of the right file are noisy copies of people in the left file.

    ``relatives`` holds (left id, right id) pairs of different people who are twins or
    parent and child of each other: the pairs that must never be auto-linked.
    """
    rates = rates or ErrorRates()
    if with_nhs:
        rates = replace(rates, nhs_missing=0.3)
    population = Population(seed, rates)
    known = population.people(left_size)
    rng = population.rng
    left = [population.record(p, f"L{i:07d}", noisy=False) for i, p in enumerate(known)]
    if not with_nhs:
        for row in left:
            row["nhs_number"] = ""
    shared = int(right_size * overlap)
    chosen = rng.sample(range(len(known)), min(shared, len(known)))
    newcomers = population.people(right_size - len(chosen))
    right_people = [known[i] for i in chosen] + newcomers
    order = list(range(len(right_people)))
    rng.shuffle(order)
    right: list[dict[str, str]] = []
    right_owner: dict[str, str] = {}
    for n, k in enumerate(order):
        rid = f"R{n:07d}"
        right.append(population.record(right_people[k], rid))
        right_owner[rid] = right_people[k].person_id
    left_owner = {row["id"]: p.person_id for row, p in zip(left, known, strict=True)}
    by_person: dict[str, str] = {pid: lid for lid, pid in left_owner.items()}
    truth = {(by_person[pid], rid) for rid, pid in right_owner.items() if pid in by_person}
    kin: dict[str, set[str]] = {}
    for p in known + newcomers:
        for other in (p.twin_of, p.parent_of):
            if other:
                kin.setdefault(p.person_id, set()).add(other)
                kin.setdefault(other, set()).add(p.person_id)
    relatives = {
        (by_person[k], rid)
        for rid, pid in right_owner.items()
        for k in kin.get(pid, ())
        if k in by_person
    }
    return LinkageTask(left, right, truth, relatives)


def dedupe_task(size: int, duplicate_share: float = 0.3, seed: int = 0) -> LinkageTask:
    """One file of ``size`` records where ``duplicate_share`` are extra noisy copies of someone."""
    population = Population(seed)
    people = population.people(int(size / (1 + duplicate_share)))
    rng = population.rng
    rows: list[tuple[dict[str, str], str]] = []
    for p in people:
        rows.append((population.record(p, "", noisy=rng.random() < 0.5), p.person_id))
    while len(rows) < size:
        p = rng.choice(people)
        rows.append((population.record(p, ""), p.person_id))
    rng.shuffle(rows)
    owners: dict[str, list[str]] = {}
    records = []
    for n, (row, pid) in enumerate(rows):
        row["id"] = f"D{n:07d}"
        records.append(row)
        owners.setdefault(pid, []).append(row["id"])
    truth = {(a, b) for ids in owners.values() for i, a in enumerate(ids) for b in ids[i + 1 :]}
    return LinkageTask(records, records, truth, set())


def write_csv(
    path: Path, rows: Iterable[dict[str, str]], columns: Sequence[str] = CSV_COLUMNS
) -> None:
    """Write records with the bulk commands' input columns."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


@dataclass(frozen=True, slots=True)
class Scores:
    """Precision, recall and F1 of predicted pairs against the true ones."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        """Share of predicted pairs that are true."""
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        """Share of true pairs that were predicted."""
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def evaluate(
    predicted: Iterable[tuple[str, str]], truth: set[tuple[str, str]], ordered: bool = True
) -> Scores:
    """Compare predicted pairs with the truth; ``ordered=False`` for dedupe (either way round)."""

    def key(pair: tuple[str, str]) -> tuple[str, str]:
        return pair if ordered else (min(pair), max(pair))

    found = {key(p) for p in predicted}
    expected = {key(p) for p in truth}
    hits = len(found & expected)
    return Scores(hits, len(found) - hits, len(expected) - hits)
