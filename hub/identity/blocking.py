"""Candidate pairs: the pairs that agree on at least one blocking key.

Comparing everything with everything is n x m comparisons; blocking compares
only records that share a key (same birth date; same surname sound and birth
year; same postcode and initial...). Several keys keep recall high, because a
true pair with a typo in one key still shares another.

Pairs are produced pass by pass, in chunks of at most ``chunk_pairs`` (except
that one block is never split), so memory stays bounded however large the
files. A pair is produced once, by the first pass that finds it: a later pass
drops pairs that already agree on an earlier key. A block larger than
``max_block_pairs`` is skipped, since a key shared by that many records says
little; its pairs can still be found by the other keys.

Each key is defined once, here: :data:`BLOCKING_KEYS` are the keys ``[blocking] passes`` may name,
:data:`INDEXED_KEYS` those of them the pipeline's resolver also looks up among the golden persons.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hub.identity.table import MISSING, Encoder, IntArray, RecordTable, lookup

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class KeyParts:
    """What the blocking keys of a table are made of, computed once per table and key."""

    table: RecordTable
    year: IntArray
    month: IntArray
    day: IntArray
    family_sound: IntArray
    given_sound: IntArray
    initial: IntArray
    width: int  # one more than the number of phonetic codes: combines two sounds into one integer

    @property
    def full_date(self) -> BoolArray:
        """Whether the record has a birth year and month."""
        return (self.year > 0) & (self.month > 0)


KeyOf = Callable[[KeyParts], tuple[IntArray, BoolArray]]
_KEYS: dict[str, KeyOf] = {}


def _key(name: str) -> Callable[[KeyOf], KeyOf]:
    def register(of: KeyOf) -> KeyOf:
        _KEYS[name] = of
        return of
    return register


@_key("nhs_number")
def _nhs_number(p: KeyParts) -> tuple[IntArray, BoolArray]:
    return p.table.nhs, p.table.nhs > 0


@_key("birth_date")
def _birth_date(p: KeyParts) -> tuple[IntArray, BoolArray]:
    return p.year * 10000 + p.month * 100 + p.day, p.full_date


@_key("birth_date_any_order")
def _birth_date_any_order(p: KeyParts) -> tuple[IntArray, BoolArray]:
    # Day and month in either order: a transposed date still meets its record.
    low, high = np.minimum(p.month, p.day), np.maximum(p.month, p.day)
    return p.year * 10000 + low * 100 + high, p.full_date


@_key("family_phonetic+birth_year")
def _family_year(p: KeyParts) -> tuple[IntArray, BoolArray]:
    return p.family_sound * 10000 + p.year, (p.family_sound >= 0) & (p.year > 0)


@_key("family_phonetic+birth_month_day")
def _family_month_day(p: KeyParts) -> tuple[IntArray, BoolArray]:
    return p.family_sound * 10000 + p.month * 100 + p.day, (p.family_sound >= 0) & p.full_date


@_key("postcode+given_initial")
def _postcode_initial(p: KeyParts) -> tuple[IntArray, BoolArray]:
    return p.table.postcode * 65536 + p.initial, (p.table.postcode >= 0) & (p.initial >= 0)


@_key("postcode+family_phonetic")
def _postcode_family(p: KeyParts) -> tuple[IntArray, BoolArray]:
    return p.table.postcode * p.width + p.family_sound, (p.table.postcode >= 0) & (p.family_sound >= 0)


@_key("given_phonetic+family_phonetic")
def _given_family(p: KeyParts) -> tuple[IntArray, BoolArray]:
    # In either order, so given and family names swapped still meet.
    low, high = np.minimum(p.given_sound, p.family_sound), np.maximum(p.given_sound, p.family_sound)
    return low * p.width + high, (p.given_sound >= 0) & (p.family_sound >= 0)


@_key("given_phonetic+birth_year")
def _given_year(p: KeyParts) -> tuple[IntArray, BoolArray]:
    return p.given_sound * 10000 + p.year, (p.given_sound >= 0) & (p.year > 0)


@_key("address_line")
def _address_line(p: KeyParts) -> tuple[IntArray, BoolArray]:
    # The same address line (normalised): survives a typo in any one name, date or postcode.
    return p.table.line.astype(np.int64), p.table.line >= 0


BLOCKING_KEYS: tuple[str, ...] = tuple(_KEYS)
"""Every blocking key ``[blocking] passes`` may name (``config/identity.toml``)."""

INDEXED_KEYS: tuple[str, ...] = (
    "nhs_number",
    "birth_date",
    "family_phonetic+birth_year",
    "given_phonetic+birth_year",
    "postcode+given_initial",
)
"""The keys the pipeline's resolver also looks up among the golden persons, when ``passes`` names them.

Each is one seek on an index of ``person_index`` (``nhs_number``, ``birth_date``,
``(family_phonetic, birth_year)``, ``(given_phonetic, birth_year)``, ``(postcode, given_name)``), whose
columns the golden-record writer fills; the other keys have no such column or index, so looking them
up would read the whole table for every batch. They still pair the records of one batch with each other
and serve the bulk commands. Local identifiers are looked up besides, always.
"""

NEVER_CAPPED = frozenset({"nhs_number"})
"""Indexed keys whose blocks count against no ``max_candidates_per_key``: a number names one person."""


def block_keys(table: RecordTable, encoder: Encoder, key: str) -> IntArray:
    """One blocking key per record (MISSING where the record lacks a part of it)."""
    of = _KEYS.get(key)
    if of is None:
        raise ValueError(f"unknown blocking key {key!r}")
    facts = encoder.name_facts()
    parts = KeyParts(table, table.birth_year, table.birth_month, table.birth_day,
                     lookup(facts.soundex, table.family), lookup(facts.soundex, table.given),
                     lookup(facts.initial, table.given), len(encoder.phonetics) + 1)
    values, present = of(parts)
    return np.where(present, values, MISSING).astype(np.int64)


@dataclass(slots=True)
class _Side:
    """One side of one pass: rows sorted by key, and each kept key's start and count."""

    rows: IntArray
    starts: IntArray
    counts: IntArray


@dataclass(slots=True)
class _Pass:
    """The blocks of one pass that will be compared."""

    left: _Side
    right: _Side
    sizes: IntArray


def _sorted_blocks(keys: IntArray) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    rows = np.flatnonzero(keys >= 0)
    rows = rows[np.argsort(keys[rows], kind="stable")]
    unique, starts, counts = np.unique(keys[rows], return_index=True, return_counts=True)
    return rows, unique, starts, counts


class Blocker:
    """Plans the blocks of every pass, then yields candidate pairs chunk by chunk."""

    def __init__(
        self,
        left_keys: list[IntArray],
        right_keys: list[IntArray] | None,
        max_block_pairs: int,
        chunk_pairs: int,
    ) -> None:
        self.dedupe = right_keys is None
        self.chunk_pairs = chunk_pairs
        self.passes: list[_Pass] = []
        # Per pass: (blocks skipped for exceeding max_block_pairs, the pairs they held).
        self.skipped: list[tuple[int, int]] = []
        # Each pass's keys with skipped blocks blanked out, to tell which pairs a pass found.
        self.effective: list[tuple[IntArray, IntArray]] = []
        for p, kl in enumerate(left_keys):
            kr = kl if right_keys is None else right_keys[p]
            rows_l, keys_l, starts_l, counts_l = _sorted_blocks(kl)
            if self.dedupe:
                rows_r, starts_r, counts_r = rows_l, starts_l, counts_l
                sizes = counts_l * (counts_l - 1) // 2
                common = keys_l
                il = ir = np.arange(len(keys_l))
            else:
                rows_r, keys_r, starts_r, counts_r = _sorted_blocks(kr)
                common, il, ir = np.intersect1d(
                    keys_l, keys_r, assume_unique=True, return_indices=True
                )
                sizes = counts_l[il] * counts_r[ir]
            keep = (sizes > 0) & (sizes <= max_block_pairs)
            kept = common[keep]
            self.passes.append(
                _Pass(
                    _Side(rows_l, starts_l[il][keep], counts_l[il][keep]),
                    _Side(rows_r, starts_r[ir][keep], counts_r[ir][keep]),
                    sizes[keep],
                )
            )
            self.skipped.append((int((sizes > max_block_pairs).sum()), int(sizes[sizes > max_block_pairs].sum())))
            self.effective.append(
                (
                    np.where(np.isin(kl, kept), kl, MISSING),
                    np.where(np.isin(kr, kept), kr, MISSING),
                )
            )

    @property
    def planned_pairs(self) -> int:
        """Pairs the passes will generate before dropping those found by an earlier pass."""
        return int(sum(int(p.sizes.sum()) for p in self.passes))

    @property
    def skipped_pairs(self) -> int:
        """Pairs in blocks over ``max_block_pairs``, never generated by their pass (another may find them)."""
        return sum(pairs for _, pairs in self.skipped)

    def pass_pairs(self) -> list[int]:
        """Pairs each pass generates (before dropping those an earlier pass found)."""
        return [int(p.sizes.sum()) for p in self.passes]

    def found_by(self, left_rows: IntArray, right_rows: IntArray) -> npt.NDArray[np.bool_]:
        """(passes x pairs): whether each pass generates each given pair (skipped blocks excluded)."""
        out = np.zeros((len(self.effective), len(left_rows)), dtype=np.bool_)
        for index, (kl, kr) in enumerate(self.effective):
            a, b = kl[left_rows], kr[right_rows]
            out[index] = (a >= 0) & (a == b)
        return out

    def chunks(self) -> Iterator[tuple[IntArray, IntArray, int]]:
        """(left rows, right rows, pairs generated) per chunk; in dedupe left row < right row."""
        for index, plan in enumerate(self.passes):
            bounds = np.cumsum(plan.sizes)
            start = 0
            while start < len(plan.sizes):
                base = bounds[start - 1] if start else 0
                stop = max(
                    int(np.searchsorted(bounds, base + self.chunk_pairs, side="right")), start + 1
                )
                left_rows, right_rows = self._pairs(plan, start, stop)
                if self.dedupe:
                    mask = left_rows < right_rows
                    left_rows, right_rows = left_rows[mask], right_rows[mask]
                generated = len(left_rows)
                earlier = np.zeros(len(left_rows), dtype=np.bool_)
                for kl, kr in self.effective[:index]:
                    a = kl[left_rows]
                    earlier |= (a >= 0) & (a == kr[right_rows])
                yield left_rows[~earlier], right_rows[~earlier], generated
                start = stop

    def _pairs(self, plan: _Pass, start: int, stop: int) -> tuple[IntArray, IntArray]:
        cl = plan.left.counts[start:stop]
        cr = plan.right.counts[start:stop]
        n = cl * cr
        block = np.repeat(np.arange(len(n)), n)
        offset = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        width = cr[block]
        left_rows = plan.left.rows[plan.left.starts[start:stop][block] + offset // width]
        right_rows = plan.right.rows[plan.right.starts[start:stop][block] + offset % width]
        return left_rows, right_rows
