"""Records encoded as columns of integer codes, so pairs are compared a million at a time.

An :class:`Encoder` owns the vocabularies (names, address lines, postcodes,
UPRNs) shared by both sides of a comparison, so equal strings get equal codes
and a string is normalised, and its phonetic code computed, once however many
records carry it. A :class:`RecordTable` is one side: a few small integer
arrays per record, which keeps a million-row file in a couple of hundred MB.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import jellyfish
import numpy as np
import numpy.typing as npt

from hub.identity import normalise
from hub.identity.nicknames import nickname_groups
from hub.identity.record import MatchRecord

IntArray = npt.NDArray[np.int64]
MISSING = -1


class Vocabulary:
    """Distinct strings and their codes, in order of first sight."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values: list[str] = []

    def code(self, value: str | None) -> int:
        """The code of ``value`` (added if new); MISSING for None."""
        if value is None:
            return MISSING
        found = self.codes.get(value)
        if found is None:
            found = len(self.values)
            self.codes[value] = found
            self.values.append(value)
        return found

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class NameFacts:
    """Per-name facts, indexed by name code: phonetic codes, initial, length, number of words."""

    soundex: IntArray
    metaphone: IntArray
    initial: IntArray
    length: IntArray
    parts: IntArray


@dataclass(slots=True)
class RecordTable:
    """One side of a comparison: each field an array over records (MISSING when absent)."""

    ids: list[str]
    given: IntArray
    family: IntArray
    birth_year: IntArray
    birth_month: IntArray
    birth_day: IntArray
    sex: IntArray
    postcode: IntArray
    sector: IntArray
    district: IntArray
    line: IntArray
    uprn: IntArray
    nhs: IntArray
    nhs_verified: npt.NDArray[np.bool_]
    deceased: npt.NDArray[np.bool_]
    identifiers: dict[int, frozenset[tuple[str, str]]]

    def __len__(self) -> int:
        return len(self.ids)


class Encoder:
    """Encodes records into :class:`RecordTable` columns over shared vocabularies."""

    def __init__(self) -> None:
        self.names = Vocabulary()
        self.lines = Vocabulary()
        self.postcodes = Vocabulary()
        self.sectors = Vocabulary()
        self.districts = Vocabulary()
        self.uprns = Vocabulary()
        self.phonetics = Vocabulary()
        self._facts: NameFacts | None = None

    def encode(self, records: Iterable[MatchRecord]) -> RecordTable:
        """Encode records (any iterable, read once) into a table."""
        ids: list[str] = []
        cols = {
            k: array("q")
            for k in (
                "given",
                "family",
                "year",
                "month",
                "day",
                "sex",
                "postcode",
                "sector",
                "district",
                "line",
                "uprn",
                "nhs",
            )
        }
        verified = array("b")
        deceased = array("b")
        identifiers: dict[int, frozenset[tuple[str, str]]] = {}
        for row, record in enumerate(records):
            ids.append(record.id)
            given = normalise.given_name(record.given_name)
            cols["given"].append(self.names.code(given))
            cols["family"].append(self.names.code(normalise.family_name(record.family_name)))
            year, month, day = normalise.birth_parts(record.birth_date)
            cols["year"].append(year)
            cols["month"].append(month)
            cols["day"].append(day)
            cols["sex"].append(normalise.sex_code(record.sex))
            parts = normalise.postcode_parts(record.postcode)
            cols["postcode"].append(self.postcodes.code(parts[0] if parts else None))
            cols["sector"].append(self.sectors.code(parts[1] if parts else None))
            cols["district"].append(self.districts.code(parts[2] if parts else None))
            cols["line"].append(self.lines.code(normalise.address_line(record.address_line)))
            cols["uprn"].append(self.uprns.code(record.uprn.strip() if record.uprn else None))
            nhs = normalise.nhs_number(record.nhs_number)
            cols["nhs"].append(int(nhs) if nhs else 0)
            verified.append(bool(nhs) and record.nhs_verified)
            deceased.append(record.deceased or record.death_date is not None)
            if record.identifiers:
                identifiers[row] = frozenset(record.identifiers)
        self._facts = None
        as_int = {
            k: np.frombuffer(v, dtype=np.int64).copy() if len(v) else np.zeros(0, np.int64)
            for k, v in cols.items()
        }
        return RecordTable(
            ids=ids,
            given=as_int["given"],
            family=as_int["family"],
            birth_year=as_int["year"],
            birth_month=as_int["month"],
            birth_day=as_int["day"],
            sex=as_int["sex"],
            postcode=as_int["postcode"],
            sector=as_int["sector"],
            district=as_int["district"],
            line=as_int["line"],
            uprn=as_int["uprn"],
            nhs=as_int["nhs"],
            nhs_verified=np.array(verified, dtype=np.bool_),
            deceased=np.array(deceased, dtype=np.bool_),
            identifiers=identifiers,
        )

    def name_facts(self) -> NameFacts:
        """Phonetic codes and initials of every name seen so far (computed once per name)."""
        if self._facts is None or len(self._facts.soundex) != len(self.names):
            values = self.names.values
            soundex = [self.phonetics.code("s:" + jellyfish.soundex(v)) for v in values]
            metaphone = [self.phonetics.code("m:" + jellyfish.metaphone(v)) for v in values]
            self._facts = NameFacts(
                soundex=np.array(soundex, dtype=np.int64),
                metaphone=np.array(metaphone, dtype=np.int64),
                initial=np.array([ord(v[0]) for v in values], dtype=np.int64),
                length=np.array([len(v) for v in values], dtype=np.int64),
                parts=np.array([v.count(" ") + 1 for v in values], dtype=np.int64),
            )
        return self._facts

    def nickname_key(self) -> dict[int, frozenset[str]]:
        """Name code -> the formal names it stands for, for names on the nickname list."""
        groups = nickname_groups()
        return {code: groups[v] for code, v in enumerate(self.names.values) if v in groups}


def lookup(facts: IntArray, codes: IntArray) -> IntArray:
    """``facts[codes]`` with MISSING wherever the code is MISSING."""
    out = np.full(codes.shape, MISSING, dtype=np.int64)
    present = codes >= 0
    out[present] = facts[codes[present]]
    return out
