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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hub.identity.table import MISSING, Encoder, IntArray, RecordTable, lookup


def block_keys(table: RecordTable, encoder: Encoder, key: str) -> IntArray:
    """One blocking key per record (MISSING where the record lacks a part of it)."""
    facts = encoder.name_facts()
    year, month, day = table.birth_year, table.birth_month, table.birth_day
    full_date = (year > 0) & (month > 0)
    family_sound = lookup(facts.soundex, table.family)
    given_sound = lookup(facts.soundex, table.given)
    width = len(encoder.phonetics) + 1
    if key == "nhs_number":
        values, present = table.nhs, table.nhs > 0
    elif key == "birth_date":
        values, present = year * 10000 + month * 100 + day, full_date
    elif key == "family_phonetic+birth_year":
        values, present = family_sound * 10000 + year, (family_sound >= 0) & (year > 0)
    elif key == "family_phonetic+birth_month_day":
        values, present = family_sound * 10000 + month * 100 + day, (family_sound >= 0) & full_date
    elif key == "postcode+given_initial":
        initial = lookup(facts.initial, table.given)
        values, present = table.postcode * 65536 + initial, (table.postcode >= 0) & (initial >= 0)
    elif key == "given_phonetic+family_phonetic":
        # In either order, so given and family names swapped still meet.
        low, high = np.minimum(given_sound, family_sound), np.maximum(given_sound, family_sound)
        values, present = low * width + high, (given_sound >= 0) & (family_sound >= 0)
    elif key == "birth_date_any_order":
        # Day and month in either order: a transposed date still meets its record.
        low, high = np.minimum(month, day), np.maximum(month, day)
        values, present = year * 10000 + low * 100 + high, full_date
    elif key == "address_line":
        # The same address line (normalised): survives a typo in any one name, date or postcode.
        values, present = table.line.astype(np.int64), table.line >= 0
    elif key == "postcode+family_phonetic":
        values, present = (
            table.postcode * width + family_sound,
            (table.postcode >= 0) & (family_sound >= 0),
        )
    elif key == "given_phonetic+birth_year":
        values, present = given_sound * 10000 + year, (given_sound >= 0) & (year > 0)
    else:
        raise ValueError(f"unknown blocking key {key!r}")
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
