"""A synthetic LLPG for an invented town, in DTF 7.3, and messy copies of its addresses.

:func:`generate_town` builds a seeded town (post town NORTHBRIDGE, postcode
area ZT, which Royal Mail does not use): streets with descriptors, numbered
houses (some with suffixes), converted houses split into flats, blocks of
flats, named houses, shops with organisation names, some alternative and
historical addresses and some demolished properties.
:func:`write_full` writes it as a full supply; :func:`write_cou` changes it and
writes the change-only update (inserts, updates, deletes, a retired UPRN with
successors, a deleted property). :func:`messy_variants` writes the addresses
the way case systems hold them, each with the true UPRN, for tests and the bench.

Run ``python -m gazetteer.simulator --out DIR --blpus N`` to write
``full.csv``, ``cou.csv`` and ``variants.csv`` into DIR.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from gazetteer.address import AddressableObject, Bs7666Address

POST_TOWN = "NORTHBRIDGE"
AREA = "ZT"
CUSTODIAN = 9999
START = date(2020, 4, 1)
FULL_DATE = date(2024, 4, 1)
COU_DATE = date(2024, 5, 1)
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

FIRST_WORDS = (  # noqa: SIM905 - a word list reads best as one string
    "ABBEY ACORN ALBERT ALDER ALEXANDRA ASH ASPEN BANK BARLEY BEACON BEECH BIRCH BLACKTHORN "
    "BRACKEN BRAMBLE BRIDGE BROOK BUTTERCUP CANAL CASTLE CEDAR CHAPEL CHERRY CHESTNUT CHURCH "
    "CLAREMONT CLOVER COLLEGE COPPER CORONATION COTTON CROWN DAISY DALE DEAN DOVE ELM FAIRFIELD "
    "FARM FERN FIELD FOREST FOUNTAIN FOX GARDEN GEORGE GLEBE GRANGE GREEN HARBOUR HAWTHORN "
    "HAZEL HEATHER HIGH HILLSIDE HOLLY IVY JUBILEE KESTREL KING KINGFISHER LABURNUM LARCH "
    "LAUREL LAVENDER LILAC LIME LINDEN LONG MANOR MAPLE MARKET MEADOW MILL MOOR MULBERRY NEW "
    "NORTH OAK ORCHARD PARK PEAR PINE POPLAR PRIMROSE PRIORY QUEEN QUARRY RAILWAY RECTORY "
    "REGENT RIVER ROSE ROWAN SANDY SCHOOL SHEPHERD SILVER SOUTH SPRING STATION SUMMER SUNNYSIDE "
    "SWALLOW SYCAMORE TANNERY THORN TOWER VALLEY VICARAGE VICTORIA VIOLET WALNUT WATER WEAVER "
    "WELL WEST WHEATFIELD WILLOW WINDMILL WOOD WREN YEW"
).split()
SECOND_WORDS = (  # noqa: SIM905 - a word list reads best as one string
    "BANK BROOK CROFT DALE END FARM FIELD GATE HALL HEATH HILL HOLME HOUSE LEA LODGE MEAD MOOR "
    "PARK RISE SIDE TREE VALE VIEW WOOD"
).split()
STREET_TYPES = (
    ("STREET", 12),
    ("ROAD", 14),
    ("AVENUE", 6),
    ("CLOSE", 8),
    ("CRESCENT", 4),
    ("DRIVE", 6),
    ("LANE", 8),
    ("PLACE", 3),
    ("COURT", 3),
    ("GARDENS", 4),
    ("TERRACE", 4),
    ("WAY", 5),
    ("GROVE", 4),
    ("MEWS", 1),
    ("SQUARE", 1),
    ("WALK", 2),
    ("ROW", 1),
    ("PARADE", 1),
    ("HILL", 2),
)
ABBREVIATED = {
    "STREET": "St",
    "ROAD": "Rd",
    "AVENUE": "Ave",
    "CLOSE": "Cl",
    "CRESCENT": "Cres",
    "DRIVE": "Dr",
    "LANE": "Ln",
    "PLACE": "Pl",
    "COURT": "Ct",
    "GARDENS": "Gdns",
    "TERRACE": "Terr",
    "GROVE": "Gr",
    "SQUARE": "Sq",
    "PARADE": "Pde",
}
LOCALITY_PARTS = (  # noqa: SIM905 - a word list reads best as one string
    "ASH BARN BECK BRAD CHEL CLIF CROS DUN EAST ELM FAIR HALL HART KIRK LAN LEA LONG MARS MID "
    "NEW NOR OAK RAV ROCK SAND SOUTH STAN THORN WEST WHIT WOOD"
).split()
LOCALITY_ENDS = (  # noqa: SIM905 - a word list reads best as one string
    "BY FIELD FORD GATE HAM HOLME LEY STEAD THORPE TON WELL WICK WORTH"
).split()
HOUSE_NAMES = (
    "ROSE COTTAGE",
    "THE COTTAGE",
    "IVY HOUSE",
    "THE OLD VICARAGE",
    "MILL HOUSE",
    "THE LODGE",
    "ORCHARD HOUSE",
    "HILLCREST",
    "WILLOW BANK",
    "THE STABLES",
    "BRAMBLE COTTAGE",
    "OAK LODGE",
    "THE BARN",
    "FERN VILLA",
    "SUNNYMEAD",
    "HOLLY HOUSE",
    "THE GABLES",
    "BEECH HOUSE",
)
BLOCK_ENDS = ("COURT", "HOUSE", "LODGE", "MANSIONS", "POINT")
SHOP_NAMES = (
    "NORTHBRIDGE PHARMACY",
    "CORNER STORES",
    "THE BAKERY",
    "HIGH LIFE HAIR",
    "GREEN GROCERS",
    "PAGES NEWSAGENTS",
    "BRIDGE DENTAL PRACTICE",
    "ALBION CAFE",
    "VALE VETS",
    "TOWN LAUNDERETTE",
    "CROWN OPTICIANS",
    "PARK BUTCHERS",
    "RIVERSIDE BOOKS",
    "MARKET FLORIST",
    "STATION TAKEAWAY",
    "NORTHBRIDGE MEDICAL CENTRE",
    "MEADOW NURSERY",
    "KINGS HARDWARE",
)
FLOOR_FLATS = ("GROUND FLOOR FLAT", "FIRST FLOOR FLAT", "SECOND FLOOR FLAT", "BASEMENT FLAT")


@dataclass
class SimStreet:
    """A street of the synthetic town."""

    usrn: int
    name: str
    locality: str
    record_type: int = 1
    post_town: str = POST_TOWN


@dataclass
class SimLpi:
    """One address of a synthetic property."""

    lpi_key: str
    sao: AddressableObject
    pao: AddressableObject
    usrn: int
    postcode: str
    logical_status: int = 1
    end_date: date | None = None
    post_town: str = POST_TOWN


@dataclass
class SimProperty:
    """A synthetic BLPU with its addresses, organisation and classification."""

    uprn: int
    blpu_class: str
    lpis: list[SimLpi]
    parent_uprn: int | None = None
    logical_status: int = 1
    end_date: date | None = None
    organisation: str | None = None
    org_key: str | None = None
    class_key: str | None = None
    xref_key: str | None = None

    @property
    def approved(self) -> SimLpi:
        """The approved (status 1) address."""
        return next(lpi for lpi in self.lpis if lpi.logical_status == 1)


@dataclass
class CouSummary:
    """What the simulated COU changed, so tests and the demo know what to expect."""

    inserted_uprns: list[int] = field(default_factory=list)
    retired_uprn: int = 0
    successors: list[int] = field(default_factory=list)
    deleted_uprn: int = 0
    renamed_uprn: int = 0
    deleted_lpi_key: str = ""


@dataclass
class Town:
    """A synthetic town's gazetteer, kept in memory so files and variants agree."""

    streets: list[SimStreet]
    properties: list[SimProperty]
    next_uprn: int
    next_key: int
    successors: list[tuple[str, int, int]] = field(default_factory=list)

    def street(self, usrn: int) -> SimStreet:
        """The street with this USRN."""
        return self._streets_by_usrn()[usrn]

    def _streets_by_usrn(self) -> dict[int, SimStreet]:
        cache: dict[int, SimStreet] | None = getattr(self, "_by_usrn", None)
        if cache is None or len(cache) != len(self.streets):
            cache = {s.usrn: s for s in self.streets}
            self._by_usrn = cache
        return cache

    def address(self, prop: SimProperty, lpi: SimLpi | None = None) -> Bs7666Address:
        """A property's address (its approved LPI unless one is given) in BS7666 parts."""
        lpi = lpi or prop.approved
        street = self.street(lpi.usrn)
        return Bs7666Address(
            sao=lpi.sao,
            pao=lpi.pao,
            street=street.name,
            locality=street.locality,
            town=street.post_town,
            postcode=lpi.postcode,
            organisation=prop.organisation,
            uprn=str(prop.uprn),
            usrn=str(street.usrn),
        )

    def key(self, kind: str) -> str:
        """A new 14-character record key (LPI ``L``, organisation ``O``...)."""
        self.next_key += 1
        return f"{CUSTODIAN}{kind}{self.next_key:09d}"


class _Postcodes:
    """Hands out postcode units: a few per street, about fifteen addresses each."""

    def __init__(self, outward: str) -> None:
        self.outward = outward
        self.counter = 0

    def next(self) -> str:
        n = self.counter
        self.counter += 1
        letters = len(INWARD_LETTERS)
        digit = 1 + (n // (letters * letters)) % 9
        first, second = INWARD_LETTERS[(n // letters) % letters], INWARD_LETTERS[n % letters]
        return f"{self.outward} {digit}{first}{second}"


def _street_names(rng: random.Random) -> Iterator[str]:
    types = [t for t, _ in STREET_TYPES]
    weights = [w for _, w in STREET_TYPES]
    used: set[str] = set()
    while True:
        first = rng.choice(FIRST_WORDS)
        body = first if rng.random() < 0.45 else f"{first} {rng.choice(SECOND_WORDS)}"
        if body.endswith(("HILL", "HOUSE")):
            continue
        name = f"{body} {rng.choices(types, weights)[0]}"
        if name in used:
            continue
        used.add(name)
        yield name


def _localities(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = rng.choice(LOCALITY_PARTS) + rng.choice(LOCALITY_ENDS)
        if name not in names:
            names.append(name)
    return names


def generate_town(blpus: int, seed: int = 7) -> Town:
    """A seeded synthetic town with about ``blpus`` properties."""
    rng = random.Random(seed)
    localities = _localities(rng, max(3, blpus // 9000))
    postcodes = {loc: _Postcodes(f"{AREA}{i + 1}") for i, loc in enumerate(localities)}
    names = _street_names(rng)
    town = Town([], [], next_uprn=100050000001, next_key=0)
    usrn = 21000001
    duplicates: list[str] = []
    placed: set[tuple[str, str]] = set()
    while len(town.properties) < blpus:
        locality = rng.choice(localities)
        if duplicates and rng.random() < 0.03:
            name = rng.choice(duplicates)
        else:
            name = next(names)
            if rng.random() < 0.1:
                duplicates.append(name)
        if (name, locality) in placed:
            continue
        placed.add((name, locality))
        street = SimStreet(usrn, name, locality)
        usrn += 1
        town.streets.append(street)
        _fill_street(town, street, rng, postcodes[locality], blpus)
    return town


def _new_property(
    town: Town,
    usrn: int,
    postcode: str,
    sao: AddressableObject,
    pao: AddressableObject,
    blpu_class: str,
    parent: int | None = None,
) -> SimProperty:
    uprn = town.next_uprn
    town.next_uprn += 1
    prop = SimProperty(uprn, blpu_class, [SimLpi(town.key("L"), sao, pao, usrn, postcode)], parent)
    town.properties.append(prop)
    return prop


def _fill_street(
    town: Town, street: SimStreet, rng: random.Random, postcodes: _Postcodes, limit: int
) -> None:
    houses = rng.randint(8, 70)
    commercial = rng.random() < 0.12
    block_at = rng.randint(1, houses) if rng.random() < 0.08 else -1
    postcode = postcodes.next()
    in_postcode = 0
    names_used: set[str] = set()
    number = 0
    for position in range(houses):
        if len(town.properties) >= limit:
            return
        number += 1 if rng.random() < 0.5 else 2
        if in_postcode >= rng.randint(12, 20):
            postcode, in_postcode = postcodes.next(), 0
        roll = rng.random()
        if position == block_at:
            _block(town, street, rng, postcode, number)
            number += 2
            in_postcode += 8
        elif roll < 0.05:
            name = rng.choice(HOUSE_NAMES)
            if name in names_used:
                continue
            names_used.add(name)
            prop = _new_property(
                town,
                street.usrn,
                postcode,
                AddressableObject(),
                AddressableObject(text=name),
                "RD02",
            )
            if rng.random() < 0.3:
                prop.lpis.append(
                    SimLpi(
                        town.key("L"),
                        AddressableObject(),
                        AddressableObject(start_number=number),
                        street.usrn,
                        postcode,
                        3,
                    )
                )
        elif roll < 0.12:
            _converted_house(town, street, rng, postcode, number)
            in_postcode += 2
        elif commercial and roll < 0.4:
            shop = _new_property(
                town,
                street.usrn,
                postcode,
                AddressableObject(),
                AddressableObject(start_number=number),
                "CR01",
            )
            shop.organisation = rng.choice(SHOP_NAMES)
            shop.org_key = town.key("O")
            shop.class_key = town.key("C")
        else:
            prop = _new_property(
                town,
                street.usrn,
                postcode,
                AddressableObject(),
                AddressableObject(start_number=number),
                rng.choice(("RD03", "RD04", "RD02")),
            )
            if rng.random() < 0.02:
                prop.lpis.append(
                    SimLpi(
                        town.key("L"),
                        AddressableObject(),
                        AddressableObject(start_number=number, text=rng.choice(HOUSE_NAMES)),
                        street.usrn,
                        postcode,
                        8,
                        START,
                    )
                )
            if rng.random() < 0.01:
                prop.logical_status, prop.end_date = 8, FULL_DATE
                prop.lpis[0].logical_status, prop.lpis[0].end_date = 8, FULL_DATE
            if rng.random() < 0.1:
                prop.xref_key = town.key("X")
            if rng.random() < 0.04:
                _new_property(
                    town,
                    street.usrn,
                    postcode,
                    AddressableObject(),
                    AddressableObject(start_number=number, start_suffix="A"),
                    "RD04",
                )
        in_postcode += 1


def _converted_house(
    town: Town, street: SimStreet, rng: random.Random, postcode: str, number: int
) -> None:
    parent = _new_property(
        town,
        street.usrn,
        postcode,
        AddressableObject(),
        AddressableObject(start_number=number),
        "PP",
    )
    style = rng.random()
    for i in range(rng.randint(2, 4)):
        if style < 0.45:
            sao = AddressableObject(text=f"FLAT {i + 1}")
        elif style < 0.7:
            sao = AddressableObject(text=f"FLAT {'ABCD'[i]}")
        elif style < 0.85:
            sao = AddressableObject(text=FLOOR_FLATS[i])
        else:
            sao = AddressableObject(start_number=i + 1)
        _new_property(
            town,
            street.usrn,
            postcode,
            sao,
            AddressableObject(start_number=number),
            "RD06",
            parent.uprn,
        )


def _block(town: Town, street: SimStreet, rng: random.Random, postcode: str, number: int) -> None:
    name = f"{rng.choice(FIRST_WORDS)} {rng.choice(BLOCK_ENDS)}"
    pao = (
        AddressableObject(start_number=number, end_number=number + 2, text=name)
        if rng.random() < 0.5
        else AddressableObject(text=name)
    )
    parent = _new_property(town, street.usrn, postcode, AddressableObject(), pao, "PP")
    for i in range(rng.randint(6, 24)):
        sao = (
            AddressableObject(text=f"FLAT {i + 1}")
            if rng.random() < 0.7
            else AddressableObject(start_number=i + 1)
        )
        _new_property(town, street.usrn, postcode, sao, pao, "RD06", parent.uprn)


# ---- writing DTF 7.3 ----


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _line(values: Iterable[Any]) -> str:
    return ",".join(_cell(v) for v in values) + "\n"


class _Writer:
    """Writes records with PRO_ORDER and counts them for the trailer."""

    def __init__(self, path: Path, file_type: str, entry: date) -> None:
        self.handle = path.open("w", encoding="utf-8", newline="")
        self.entry = entry
        self.records = 0
        self.order = 0
        self.raw(
            [10, "NORTHBRIDGE COUNCIL", CUSTODIAN, entry, 1, entry, "09:00:00", "7.3", file_type]
        )
        self.raw(
            [
                29,
                "NORTHBRIDGE LLPG",
                "Synthetic town",
                "Northbridge",
                "N",
                "Northbridge Council",
                "W",
                "NORTHBRIDGE COUNCIL",
                None,
                CUSTODIAN,
                "British National Grid",
                "Metres",
                entry,
                "BS7666",
                entry,
                "ENG",
                "UTF-8",
            ]
        )

    def raw(self, values: list[Any]) -> None:
        self.handle.write(_line(values))
        self.records += 1

    def record(self, record_type: int, change: str, values: list[Any]) -> None:
        self.order += 1
        self.raw([record_type, change, self.order, *values])

    def close(self, trailer_counts: str = "all", adjust: int = 0) -> None:
        count = self.records + 1 if trailer_counts == "all" else self.records - 1
        self.raw([99, 0, count + adjust, self.entry, "09:00:00"])
        self.handle.close()


def _street_values(street: SimStreet) -> list[Any]:
    return [
        street.usrn,
        street.record_type,
        CUSTODIAN,
        2,
        START,
        1,
        8,
        1,
        START,
        START,
        START,
        None,
        430000.0,
        290000.0,
        430200.0,
        290100.0,
        10,
    ]


def _descriptor_values(street: SimStreet) -> list[Any]:
    return [street.usrn, street.name, street.locality, street.post_town, "NORTHBRIDGE", "ENG"]


def _blpu_values(prop: SimProperty, updated: date) -> list[Any]:
    state = 4 if prop.logical_status == 8 else 2
    return [
        prop.uprn,
        prop.logical_status,
        state,
        START,
        prop.blpu_class,
        prop.parent_uprn,
        431000.0 + prop.uprn % 1000,
        290000.0 + prop.uprn % 997,
        1,
        CUSTODIAN,
        START,
        prop.end_date,
        updated,
        START,
        prop.organisation,
        "E05000001",
        None,
        None,
        None,
        None,
    ]


def _lpi_values(prop: SimProperty, lpi: SimLpi, updated: date) -> list[Any]:
    sao, pao = lpi.sao, lpi.pao
    return [
        prop.uprn,
        lpi.lpi_key,
        "ENG",
        lpi.logical_status,
        START,
        lpi.end_date,
        START,
        updated,
        sao.start_number,
        sao.start_suffix,
        sao.end_number,
        sao.end_suffix,
        sao.text,
        pao.start_number,
        pao.start_suffix,
        pao.end_number,
        pao.end_suffix,
        pao.text,
        lpi.usrn,
        None,
        "Y",
        lpi.postcode,
        lpi.post_town,
        "Y",
        None,
        None,
        None,
    ]


def _property_records(writer: _Writer, prop: SimProperty, change: str, updated: date) -> None:
    writer.record(21, change, _blpu_values(prop, updated))
    for lpi in prop.lpis:
        writer.record(24, change, _lpi_values(prop, lpi, updated))
    if prop.organisation and prop.org_key:
        writer.record(
            31,
            change,
            [prop.uprn, prop.org_key, prop.organisation, None, START, None, updated, START],
        )
    if prop.class_key:
        writer.record(
            32,
            change,
            [
                prop.uprn,
                prop.class_key,
                prop.blpu_class,
                "AddressBase Premium Classification Scheme",
                1.0,
                START,
                None,
                updated,
                START,
            ],
        )
    if prop.xref_key:
        writer.record(
            23,
            change,
            [
                prop.uprn,
                prop.xref_key,
                f"CTAX{prop.uprn % 10_000_000:07d}",
                1,
                "7666VC",
                START,
                None,
                updated,
                START,
            ],
        )


def write_full(
    town: Town, path: Path, *, trailer_counts: str = "all", count_error: int = 0
) -> Path:
    """Write the town as a DTF 7.3 full supply (``count_error`` spoils the trailer for tests)."""
    writer = _Writer(path, "F", FULL_DATE)
    for street in town.streets:
        writer.record(11, "I", _street_values(street))
        writer.record(15, "I", _descriptor_values(street))
    for prop in town.properties:
        _property_records(writer, prop, "I", FULL_DATE)
    for key, old, new in town.successors:
        writer.record(30, "I", [old, key, START, None, FULL_DATE, START, new])
    writer.close(trailer_counts, count_error)
    return path


def write_cou(
    town: Town, path: Path, seed: int = 11, *, trailer_counts: str = "data"
) -> CouSummary:
    """Change the town and write the change-only update; returns what changed.

    Deletes are written after the inserts on purpose: the reader must apply them first.
    """
    rng = random.Random(seed)
    summary = CouSummary()
    writer = _Writer(path, "C", COU_DATE)
    live = [
        p
        for p in town.properties
        if p.logical_status == 1
        and p.parent_uprn is None
        and p.blpu_class in ("RD03", "RD04")
        and len(p.lpis) == 1
        and p.approved.pao.start_number is not None
    ]
    chosen = rng.sample(live, 3)
    # A house split into two flats: the house is retired and the flats succeed it.
    house = chosen[0]
    house.logical_status, house.end_date = 8, COU_DATE
    summary.retired_uprn = house.uprn
    writer.record(21, "U", _blpu_values(house, COU_DATE))
    lpi = house.approved
    for letter in "AB":
        flat = _new_property(
            town, lpi.usrn, lpi.postcode, AddressableObject(text=f"FLAT {letter}"), lpi.pao, "RD06"
        )
        _property_records(writer, flat, "I", COU_DATE)
        key = town.key("S")
        town.successors.append((key, house.uprn, flat.uprn))
        writer.record(30, "I", [house.uprn, key, COU_DATE, None, COU_DATE, COU_DATE, flat.uprn])
        summary.successors.append(flat.uprn)
        summary.inserted_uprns.append(flat.uprn)
    # New builds at the end of a street, in a new postcode.
    street = town.street(chosen[1].approved.usrn)
    top = max(
        p.approved.pao.start_number or 0
        for p in town.properties
        if p.lpis[0].usrn == street.usrn and p.logical_status == 1
    )
    new_postcode = f"{chosen[1].approved.postcode.split()[0]} 9ZZ"
    for i in range(3):
        prop = _new_property(
            town,
            street.usrn,
            new_postcode,
            AddressableObject(),
            AddressableObject(start_number=top + 2 * (i + 1)),
            "RD04",
        )
        _property_records(writer, prop, "I", COU_DATE)
        summary.inserted_uprns.append(prop.uprn)
    # A house gets a name: the LPI is updated.
    renamed = chosen[2]
    old = renamed.approved
    renamed.lpis[0] = SimLpi(
        old.lpi_key,
        old.sao,
        AddressableObject(start_number=old.pao.start_number, text="THE LINDENS"),
        old.usrn,
        old.postcode,
    )
    writer.record(24, "U", _lpi_values(renamed, renamed.lpis[0], COU_DATE))
    summary.renamed_uprn = renamed.uprn
    # Deletes: an alternative LPI and a whole property (with its LPIs).
    alternative = next(
        p for p in town.properties if len(p.lpis) > 1 and p.lpis[1].logical_status == 3
    )
    gone_lpi = alternative.lpis.pop(1)
    summary.deleted_lpi_key = gone_lpi.lpi_key
    doomed = next(
        p
        for p in reversed(town.properties)
        if p.logical_status == 1
        and p.parent_uprn is None
        and p.blpu_class == "RD02"
        and len(p.lpis) == 1
        and not p.xref_key
        and p.uprn not in summary.inserted_uprns
        and p is not renamed
    )
    town.properties.remove(doomed)
    summary.deleted_uprn = doomed.uprn
    writer.record(24, "D", _lpi_values(alternative, gone_lpi, COU_DATE))
    writer.record(24, "D", _lpi_values(doomed, doomed.lpis[0], COU_DATE))
    writer.record(21, "D", _blpu_values(doomed, COU_DATE))
    writer.close(trailer_counts)
    return summary


# ---- messy variants ----


@dataclass(frozen=True)
class Variant:
    """An address written the way a case system might hold it, with the UPRN it really is."""

    text: str
    postcode: str | None
    uprn: str


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 6:
        return word
    i = rng.randint(1, len(word) - 2)
    kind = rng.random()
    if kind < 0.4:
        return word[:i] + word[i + 1 :]
    if kind < 0.7:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i] + word[i:]


def _cased(text: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return text.upper()
    if roll < 0.8:
        return " ".join(w.capitalize() for w in text.split(" "))
    return text.lower()


def _variant(town: Town, prop: SimProperty, postcodes: list[str], rng: random.Random) -> Variant:
    lpi = prop.approved
    street = town.street(lpi.usrn)
    words = street.name.split()
    if words[-1] in ABBREVIATED and rng.random() < 0.55:
        words[-1] = ABBREVIATED[words[-1]] + ("." if rng.random() < 0.2 else "")
    if rng.random() < 0.08:
        longest = max(range(len(words) - 1 or 1), key=lambda i: len(words[i]))
        words[longest] = _typo(words[longest], rng)
    street_text = " ".join(words)
    pao_numbers = lpi.pao.numbers
    if lpi.pao.start_suffix and rng.random() < 0.4:
        pao_numbers = f"{lpi.pao.start_number} {lpi.pao.start_suffix}"
    if lpi.pao.end_number is not None and rng.random() < 0.3:
        pao_numbers = pao_numbers.replace("-", " - ")
    parts: list[str] = []
    if prop.organisation and rng.random() < 0.7:
        parts.append(prop.organisation)
    sao = lpi.sao.render()
    numbered_flat = (
        sao.startswith("FLAT ") and sao[5:].isdigit() or (lpi.sao.start_number and not lpi.sao.text)
    )
    flat_id = sao[5:] if sao.startswith("FLAT ") else str(lpi.sao.start_number or "")
    keep_name = bool(lpi.pao.text) and (not pao_numbers or rng.random() < 0.7)
    if numbered_flat and pao_numbers and not keep_name and rng.random() < 0.5:
        style = rng.random()
        if style < 0.35:
            parts.append(f"{pao_numbers}/{flat_id} {street_text}")
        elif style < 0.7:
            parts.append(f"{flat_id}/{pao_numbers} {street_text}")
        else:
            parts.append(f"Flat {flat_id} {pao_numbers} {street_text}")
    else:
        if sao:
            flat_word = (
                rng.choice(("Flat", "Flat", "Apartment", "Apt", "Flat No."))
                if numbered_flat
                else ""
            )
            parts.append(f"{flat_word} {flat_id}".strip() if flat_word and flat_id else sao)
        if keep_name:
            parts.append(lpi.pao.text or "")
        parts.append(f"{pao_numbers} {street_text}".strip())
    if rng.random() < 0.6:
        parts.append(street.locality)
    if rng.random() < 0.6:
        parts.append(POST_TOWN)
    postcode: str | None = lpi.postcode
    roll = rng.random()
    if roll < 0.2:
        postcode = None
    elif roll < 0.25:
        outward = lpi.postcode.split()[0]
        postcode = rng.choice([p for p in postcodes if p.startswith(outward + " ")] or postcodes)
    if postcode and rng.random() < 0.15:
        postcode = postcode.replace(" ", "")
    separator = ", " if rng.random() < 0.7 else " "
    text = _cased(separator.join(p for p in parts if p), rng)
    if postcode and rng.random() < 0.5:
        text = f"{text}{separator}{postcode if rng.random() < 0.7 else postcode.lower()}"
        postcode = None
    return Variant(text, postcode, str(prop.uprn))


def messy_variants(town: Town, count: int, seed: int = 3) -> list[Variant]:
    """``count`` messy addresses of live properties (flats, ranges, suffixes, abbreviations, typos,
    missing or wrong postcodes, organisation names), each with its true UPRN."""
    rng = random.Random(seed)
    live = [p for p in town.properties if p.logical_status == 1 and p.lpis[0].logical_status == 1]
    postcodes = sorted({p.approved.postcode for p in live})
    return [_variant(town, rng.choice(live), postcodes, rng) for _ in range(count)]


def write_variants(variants: Iterable[Variant], path: Path) -> Path:
    """Write variants as CSV (text, postcode, uprn)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "postcode", "uprn"])
        for v in variants:
            writer.writerow([v.text, v.postcode or "", v.uprn])
    return path


def main(argv: list[str] | None = None) -> None:
    """Command line: write full.csv, cou.csv and variants.csv for a synthetic town."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Folder to write the files into.")
    parser.add_argument("--blpus", type=int, default=2000, help="Number of properties.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--variants", type=int, default=1000, help="Number of messy addresses.")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    town = generate_town(args.blpus, args.seed)
    write_full(town, args.out / "full.csv")
    write_cou(town, args.out / "cou.csv")
    write_variants(messy_variants(town, args.variants), args.out / "variants.csv")
    print(f"wrote {len(town.properties)} properties on {len(town.streets)} streets to {args.out}")


if __name__ == "__main__":
    main()
