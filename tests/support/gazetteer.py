"""Gazetteer test helpers: DTF 7.3 files written by hand, and a tiny gazetteer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gazetteer.simulator import CouSummary, Town

D = "2024-04-01"


def cell(value: Any) -> str:
    """One CSV cell the way DTF writes it: text quoted, numbers and dates bare."""
    if value is None:
        return ""
    if isinstance(value, str) and not (
        len(value) == 10 and value[4] == "-" and value[:4].isdigit()
    ):
        return '"' + value + '"'
    return str(value)


def write_dtf(
    path: Path,
    file_type: str,
    records: Sequence[Sequence[Any]],
    *,
    count: int | None = None,
    volume: int = 1,
) -> Path:
    """A DTF 7.3 file: header, the records given (each starting with its record type), trailer.

    ``count`` overrides the trailer's RECORD_COUNT (default: every record including header
    and trailer).
    """
    lines = [[10, "TEST COUNCIL", 9999, D, volume, D, "09:00:00", "7.3", file_type]]
    lines += [list(r) for r in records]
    declared = len(lines) + 1 if count is None else count
    lines.append([99, 0, declared, D, "09:00:00"])
    path.write_text(
        "".join(",".join(cell(v) for v in line) + "\n" for line in lines), encoding="utf-8"
    )
    return path


def street(change: str, order: int, usrn: int) -> list[Any]:
    """A street record (11)."""
    return [11, change, order, usrn, 1, 9999, 2, D, 1, 8, 1, D, D, D, None, 1.0, 2.0, 3.0, 4.0, 10]


def descriptor(change: str, order: int, usrn: int, name: str, locality: str | None) -> list[Any]:
    """A street descriptor record (15) in the town of EXAMPLETOWN."""
    return [15, change, order, usrn, name, locality, "EXAMPLETOWN", "EXAMPLE", "ENG"]


def blpu(
    change: str,
    order: int,
    uprn: int,
    status: int = 1,
    *,
    end: str | None = None,
    parent: int | None = None,
    org: str | None = None,
) -> list[Any]:
    """A BLPU record (21)."""
    return [
        21,
        change,
        order,
        uprn,
        status,
        2,
        D,
        "RD04",
        parent,
        431050.0,
        290050.0,
        1,
        9999,
        D,
        end,
        D,
        D,
        org,
        "E05000001",
        None,
        None,
        None,
        None,
    ]


def lpi(
    change: str,
    order: int,
    uprn: int,
    key: str,
    usrn: int,
    postcode: str,
    *,
    sao: tuple[Any, ...] = (None, None, None, None, None),
    pao: tuple[Any, ...] = (None, None, None, None, None),
    status: int = 1,
) -> list[Any]:
    """An LPI record (24); ``sao`` and ``pao`` are (start, suffix, end, end suffix, text)."""
    return [
        24,
        change,
        order,
        uprn,
        key,
        "ENG",
        status,
        D,
        None,
        D,
        D,
        *sao,
        *pao,
        usrn,
        None,
        "Y",
        postcode,
        "EXAMPLETOWN",
        "Y",
        None,
        None,
        None,
    ]


def organisation(change: str, order: int, uprn: int, key: str, name: str) -> list[Any]:
    """An organisation record (31)."""
    return [31, change, order, uprn, key, name, None, D, None, D, D]


def successor(change: str, order: int, uprn: int, key: str, new: int) -> list[Any]:
    """A successor record (30)."""
    return [30, change, order, uprn, key, D, None, D, D, new]


def pao(
    start: int | None = None,
    suffix: str | None = None,
    end: int | None = None,
    text: str | None = None,
) -> tuple[Any, ...]:
    """PAO (or SAO) parts for :func:`lpi`."""
    return (start, suffix, end, None, text)


HIGH, MILL, CHURCH_A, CHURCH_O = 21000001, 21000002, 21000003, 21000004
U = 100050000000


def tiny_records() -> list[list[Any]]:
    """A small gazetteer with the shapes the matcher must tell apart."""
    records: list[list[Any]] = []
    order = 0

    def add(record: list[Any]) -> None:
        nonlocal order
        order += 1
        record[2] = order
        records.append(record)

    for usrn, name, locality in (
        (HIGH, "HIGH STREET", None),
        (MILL, "MILL ROAD", None),
        (CHURCH_A, "CHURCH LANE", "ASHBY"),
        (CHURCH_O, "CHURCH LANE", "OAKLEY"),
    ):
        add(street("I", 0, usrn))
        add(descriptor("I", 0, usrn, name, locality))
    homes = [
        (1, HIGH, "ZT1 1AA", (None,) * 5, pao(14)),
        (2, HIGH, "ZT1 1AA", pao(text="FLAT 2"), pao(14)),
        (3, HIGH, "ZT1 1AA", pao(text="FLAT 1"), pao(14)),
        (4, HIGH, "ZT1 1AA", (None,) * 5, pao(14, "A")),
        (5, HIGH, "ZT1 1AB", (None,) * 5, pao(20, end=22)),
        (6, HIGH, "ZT1 1AB", (None,) * 5, pao(30)),
        (7, HIGH, "ZT1 1AB", (None,) * 5, pao(text="ROSE COTTAGE")),
        (8, MILL, "ZT1 2BB", pao(text="FLAT 3"), pao(5)),
        (9, MILL, "ZT1 2BB", pao(text="FLAT 5"), pao(3)),
        (10, MILL, "ZT1 2BB", (None,) * 5, pao(9)),
        (11, CHURCH_A, "ZT2 1AA", (None,) * 5, pao(7)),
        (12, CHURCH_O, "ZT3 1AA", (None,) * 5, pao(7)),
    ]
    for n, usrn, postcode, sao, building in homes:
        add(blpu("I", 0, U + n, parent=U + 1 if n in (2, 3) else None))
        add(lpi("I", 0, U + n, f"9999L{n:09d}", usrn, postcode, sao=sao, pao=building))
    add(organisation("I", 0, U + 6, "9999O000000006", "NORTHBRIDGE PHARMACY"))
    add(blpu("I", 0, U + 13, 8, end=D))
    add(lpi("I", 0, U + 13, "9999L000000013", MILL, "ZT1 2BB", pao=pao(11), status=8))
    return records


@dataclass
class TownFiles:
    """A simulated town with its full supply and COU on disk."""

    town: Town
    full: Path
    cou: Path
    summary: CouSummary
