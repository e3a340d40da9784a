"""Records encoded as columns of integer codes, so pairs are compared a million at a time.

An :class:`Encoder` owns the vocabularies (names, address lines, postcodes,
UPRNs) shared by both sides of a comparison, so equal strings get equal codes
and a string is normalised, and its phonetic code computed, once however many
records carry it. A :class:`RecordTable` is one side: a few small integer
arrays per record, which keeps a million-row file in a couple of hundred MB.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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
        self._array: npt.NDArray[np.object_] = np.empty(0, dtype=object)

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

    def code_all(self, values: Iterable[str | None]) -> array[int]:
        """The codes of ``values`` (as :meth:`code`, a column at a time)."""
        get, code = self.codes.get, self.code
        out = array("q")
        append = out.append
        for value in values:
            if value is None:
                append(MISSING)
            else:
                found = get(value)
                append(code(value) if found is None else found)
        return out

    def array(self) -> npt.NDArray[np.object_]:
        """The values as an object array, so a column of codes picks its strings in one indexing
        (kept, and extended only by the values added since)."""
        if len(self._array) != len(self.values):
            grown = np.empty(len(self.values) - len(self._array), dtype=object)
            grown[:] = self.values[len(self._array):]
            self._array = np.concatenate([self._array, grown])
        return self._array

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
    # A row's one local identifier as a code of the encoder's (system, value) pairs, and its system's code;
    # NONE without identifiers, SEVERAL with more than one (compared as sets).
    identifier: IntArray
    identifier_system: IntArray

    def __len__(self) -> int:
        return len(self.ids)


NONE, SEVERAL = -1, -2


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
        self.identifier_pairs: dict[tuple[str, str], int] = {}
        self.identifier_systems: dict[str, int] = {}
        self._facts: NameFacts | None = None
        self._sorted_lines: list[str] = []
        self._sorted_array: npt.NDArray[np.object_] = np.empty(0, dtype=object)
        # Per-name facts and nickname groups, extended only by the names added since they were last
        # computed: an encoder kept across a sync's batches (hub.identity.blocks) never redoes a name.
        self._fact_columns: tuple[list[int], list[int], list[int], list[int], list[int]] = ([], [], [], [], [])
        self._nicknames: dict[int, frozenset[str]] = {}
        self._nicknames_seen = 0

    def encode(self, records: Iterable[MatchRecord]) -> RecordTable:
        """Encode records (any iterable, read once) into a table."""
        ids: list[str] = []
        cols = _columns()
        verified = array("b")
        deceased = array("b")
        identifiers: dict[int, frozenset[tuple[str, str]]] = {}
        for row, record in enumerate(records):
            ids.append(record.id)
            self._append(cols, verified, deceased, normalised_fields(record))
            if record.identifiers:
                identifiers[row] = frozenset(record.identifiers)
        return self._table(ids, cols, verified, deceased, identifiers)

    def encode_normalised(
        self,
        ids: list[str],
        rows: Iterable[Sequence[Any]],
        identifiers: dict[int, frozenset[tuple[str, str]]] | None = None,
    ) -> RecordTable:
        """Encode records already normalised by :func:`normalised_fields` (as the store keeps them).

        Gives exactly the table :meth:`encode` gives for the records the rows were made from,
        without normalising anything again; ``identifiers`` maps row -> local identifiers.
        """
        # A column at a time: one pass per field over plain lists, no per-record calls.
        columns = list(zip(*rows, strict=True))
        if not columns:
            return self._table([], _columns(), array("b"), array("b"), {})
        _, given, family, year, month, day, sex, postcode, sector, district, line, uprn, nhs, ver, dead = columns
        names = self.names.code_all
        cols = {
            "given": names(given),
            "family": names(family),
            "year": array("q", year),
            "month": array("q", month),
            "day": array("q", day),
            "sex": array("q", sex),
            "postcode": self.postcodes.code_all(postcode),
            "sector": self.sectors.code_all(sector),
            "district": self.districts.code_all(district),
            "line": self.lines.code_all(line),
            "uprn": self.uprns.code_all(uprn),
            "nhs": array("q", [int(n) if n else 0 for n in nhs]),
        }
        return self._table(list(ids), cols, array("b", ver), array("b", dead), identifiers or {})

    def _append(self, cols: dict[str, array[int]], verified: array[int], deceased: array[int],
                fields: Sequence[Any]) -> None:
        _, given, family, year, month, day, sex, postcode, sector, district, line, uprn, nhs, ver, dead = fields
        cols["given"].append(self.names.code(given))
        cols["family"].append(self.names.code(family))
        cols["year"].append(year)
        cols["month"].append(month)
        cols["day"].append(day)
        cols["sex"].append(sex)
        cols["postcode"].append(self.postcodes.code(postcode))
        cols["sector"].append(self.sectors.code(sector))
        cols["district"].append(self.districts.code(district))
        cols["line"].append(self.lines.code(line))
        cols["uprn"].append(self.uprns.code(uprn))
        cols["nhs"].append(int(nhs) if nhs else 0)
        verified.append(ver)
        deceased.append(dead)

    def _table(self, ids: list[str], cols: dict[str, array[int]], verified: array[int], deceased: array[int],
               identifiers: dict[int, frozenset[tuple[str, str]]]) -> RecordTable:
        as_int = {
            k: np.frombuffer(v, dtype=np.int64).copy() if len(v) else np.zeros(0, np.int64)
            for k, v in cols.items()
        }
        identifier = np.full(len(ids), NONE, dtype=np.int64)
        system = np.full(len(ids), NONE, dtype=np.int64)
        pairs, systems = self.identifier_pairs, self.identifier_systems
        for row, found in identifiers.items():
            if len(found) == 1:
                ((name, value),) = found
                identifier[row] = pairs.setdefault((name, value), len(pairs))
                system[row] = systems.setdefault(name, len(systems))
            elif found:
                identifier[row] = system[row] = SEVERAL
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
            identifier=identifier,
            identifier_system=system,
        )

    def sorted_lines(self) -> npt.NDArray[np.object_]:
        """Each address line's words sorted and joined by one space, by line code: what
        ``fuzz.token_sort_ratio`` compares, made once per line so pairs need only ``fuzz.ratio``."""
        done = self._sorted_lines
        if len(done) != len(self.lines):
            done.extend(" ".join(sorted(v.split())) for v in self.lines.values[len(done):])
            self._sorted_array = np.array(done, dtype=object)
        return self._sorted_array

    def name_facts(self) -> NameFacts:
        """Phonetic codes and initials of every name seen so far (computed once per name)."""
        if self._facts is None or len(self._facts.soundex) != len(self.names):
            soundex, metaphone, initial, length, parts = self._fact_columns
            for v in self.names.values[len(soundex):]:
                soundex.append(self.phonetics.code("s:" + jellyfish.soundex(v)))
                metaphone.append(self.phonetics.code("m:" + jellyfish.metaphone(v)))
                initial.append(ord(v[0]))
                length.append(len(v))
                parts.append(v.count(" ") + 1)
            self._facts = NameFacts(
                soundex=np.array(soundex, dtype=np.int64),
                metaphone=np.array(metaphone, dtype=np.int64),
                initial=np.array(initial, dtype=np.int64),
                length=np.array(length, dtype=np.int64),
                parts=np.array(parts, dtype=np.int64),
            )
        return self._facts

    def nickname_key(self) -> dict[int, frozenset[str]]:
        """Name code -> the formal names it stands for, for names on the nickname list."""
        values = self.names.values
        if self._nicknames_seen < len(values):
            groups = nickname_groups()
            for code in range(self._nicknames_seen, len(values)):
                found = groups.get(values[code])
                if found is not None:
                    self._nicknames[code] = found
            self._nicknames_seen = len(values)
        return self._nicknames


MATCH_FORMAT = 1
"""Version of :func:`normalised_fields`; rows kept in another format are normalised afresh."""

_COLUMNS = ("given", "family", "year", "month", "day", "sex", "postcode", "sector", "district", "line", "uprn", "nhs")


def _columns() -> dict[str, array[int]]:
    return {k: array("q") for k in _COLUMNS}


def normalised_fields(record: MatchRecord) -> list[Any]:
    """A record's comparable fields, normalised, as a JSON-ready list headed by ``MATCH_FORMAT``.

    The store keeps this list beside each golden person (``person_index.match_fields``), so the
    resolver encodes candidates without reading their documents or normalising them again.
    """
    parts = normalise.postcode_parts(record.postcode)
    year, month, day = normalise.birth_parts(record.birth_date)
    nhs = normalise.nhs_number(record.nhs_number)
    return [
        MATCH_FORMAT,
        normalise.given_name(record.given_name),
        normalise.family_name(record.family_name),
        year,
        month,
        day,
        normalise.sex_code(record.sex),
        parts[0] if parts else None,
        parts[1] if parts else None,
        parts[2] if parts else None,
        normalise.address_line(record.address_line),
        record.uprn.strip() if record.uprn else None,
        nhs,
        bool(nhs) and record.nhs_verified,
        record.deceased or record.death_date is not None,
    ]


def lookup(facts: IntArray, codes: IntArray) -> IntArray:
    """``facts[codes]`` with MISSING wherever the code is MISSING."""
    out = np.full(codes.shape, MISSING, dtype=np.int64)
    present = codes >= 0
    out[present] = facts[codes[present]]
    return out


class EncodedPersons:
    """Known persons encoded once, kept as one growing table over one encoder's vocabularies.

    During a sync (:class:`hub.identity.blocks.PersonBlocks`) the same persons are candidates
    batch after batch; encoding each once, and comparing candidate pairs against this table's
    rows, replaces building and encoding a table of every batch's candidates. A person whose
    match fields change is forgotten (:meth:`forget`) and encoded again when next a candidate;
    its old row stays unused.
    """

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.row_of: dict[str, int] = {}
        self._table = encoder.encode_normalised([], [])

    @property
    def table(self) -> RecordTable:
        """Every row encoded so far (rows of forgotten persons included)."""
        return self._table

    def add(self, ids: list[str], rows: Sequence[Sequence[Any]],
            identifiers: dict[int, frozenset[tuple[str, str]]], remember: bool = True) -> list[int]:
        """Encode ``rows`` (normalised fields; ``identifiers`` by position in ``rows``) and append them;
        their rows in :attr:`table`. ``remember`` False leaves them unfound by :attr:`row_of`."""
        start = len(self._table)
        new = self.encoder.encode_normalised(ids, rows, identifiers)
        old = self._table
        self._table = RecordTable(
            ids=old.ids + new.ids,
            **{name: np.concatenate([getattr(old, name), getattr(new, name)]) for name in _ARRAYS},
            identifiers={**old.identifiers, **{start + k: v for k, v in new.identifiers.items()}},
        )
        if remember:
            self.row_of.update((pid, start + k) for k, pid in enumerate(ids))
        return list(range(start, start + len(ids)))

    def forget(self, person_id: str) -> None:
        """The person's fields changed: encode it again when it is next asked for."""
        self.row_of.pop(person_id, None)


_ARRAYS = ("given", "family", "birth_year", "birth_month", "birth_day", "sex", "postcode", "sector", "district",
           "line", "uprn", "nhs", "nhs_verified", "deceased", "identifier", "identifier_system")
