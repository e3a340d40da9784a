"""Comparison levels of record pairs, computed a column at a time.

Each field of a pair falls into one level (``COMPARISONS``); level 0 is always
``missing`` (one side has nothing to compare) and weighs nothing. String
similarity is rapidfuzz's (Jaro-Winkler, OSA edit distance, token-sort ratio),
computed once per distinct pair of strings with ``process.cpdist``; phonetic
codes are jellyfish's Metaphone and Soundex.

The guards are facts about a pair that override its score; they are computed
here, beside the levels they read, as bits of one flag per pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler

from hub.identity.blocking import Blocker
from hub.identity.config import Guards
from hub.identity.table import MISSING, NONE, Encoder, IntArray, RecordTable, lookup

COMPARISONS: dict[str, tuple[str, ...]] = {
    "given_name": (
        "missing",
        "exact",
        "swapped",
        "nickname",
        "similar",
        "phonetic",
        "close",
        "initial",
        "different",
    ),
    "family_name": (
        "missing",
        "exact",
        "swapped",
        "similar",
        "phonetic",
        "close",
        "part",
        "different",
    ),
    "birth_date": ("missing", "exact", "transposed", "one_digit", "same_year", "different"),
    "sex": ("missing", "same", "different"),
    "address": (
        "missing",
        "uprn",
        "line_and_postcode",
        "similar_line_and_postcode",
        "postcode",
        "line",
        "similar_line",
        "sector",
        "district",
        "different",
    ),
    "nhs_number": ("missing", "same", "different"),
    "identifier": ("missing", "shared", "conflicting"),
}
FIELDS: tuple[str, ...] = tuple(COMPARISONS)
MAX_LEVELS = max(len(v) for v in COMPARISONS.values())

# Guard bits: what overrides a pair's score, and why.
TWINS = 1
PARENT_CHILD = 2
PARENT_CHILD_OR_TYPO = 4
DECEASED = 8
NHS_VERIFIED_SAME = 16
NHS_VERIFIED_DIFFERENT = 32
AMBIGUOUS = 64
# Two different NHS numbers that both pass modulus 11, not both verified: two people, as far as
# anything automatic may say (a mistyped number that still passes the check is for a person to find).
NHS_CONFLICT = 128

# Jaro-Winkler similarity at or above which two names are "similar" / "close".
SIMILAR = 0.92
CLOSE = 0.80
# Token-sort ratio (0-100) at or above which two address lines are the same line, or alike
# (a mistyped street: "stanleykstreet" for "stanley street").
SAME_LINE = 90.0
SIMILAR_LINE = 75.0


def level(field: str, name: str) -> int:
    """The index of a named level of a field."""
    return COMPARISONS[field].index(name)


@dataclass(slots=True)
class PairComparison:
    """Levels (pairs x fields) of a batch of pairs, and the guard flags of each pair."""

    left_rows: IntArray
    right_rows: IntArray
    levels: npt.NDArray[np.int8]
    guards: npt.NDArray[np.int16]

    def __len__(self) -> int:
        return len(self.left_rows)


def _pair_scores(
    left: IntArray,
    right: IntArray,
    values: npt.NDArray[np.object_],
    mask: npt.NDArray[np.bool_],
    scorer: Callable[..., Any],
) -> npt.NDArray[np.float64]:
    """scorer(values[left], values[right]) where ``mask``, once per distinct pair of codes
    (``values``: the strings by code, as an object array)."""
    out = np.zeros(left.shape, dtype=np.float64)
    if not mask.any():
        return out
    width = max(len(values), 1)
    keys = left[mask] * width + right[mask]
    unique, inverse = np.unique(keys, return_inverse=True)
    queries = values[unique // width]
    choices = values[unique % width]
    scores = process.cpdist(queries, choices, scorer=scorer, workers=-1, dtype=np.float64)
    out[mask] = np.asarray(scores, dtype=np.float64)[inverse]
    return out


def _pair_flags(
    left: IntArray,
    right: IntArray,
    mask: npt.NDArray[np.bool_],
    test: Callable[[int, int], bool],
) -> npt.NDArray[np.bool_]:
    """test(left code, right code) where ``mask``, once per distinct pair of codes."""
    out = np.zeros(left.shape, dtype=np.bool_)
    if not mask.any():
        return out
    a, b = left[mask], right[mask]
    width = int(max(a.max(), b.max())) + 1  # codes of both present: >= 0
    unique, inverse = np.unique(a * width + b, return_inverse=True)
    answers = np.array([test(x, y) for x, y in zip((unique // width).tolist(), (unique % width).tolist(),
                                                    strict=True)], dtype=np.bool_)
    out[mask] = answers[inverse.reshape(-1)]
    return out


def _select(conditions: list[npt.NDArray[np.bool_]], default: int) -> npt.NDArray[np.int8]:
    """The index (1-based level) of the first true condition, else ``default``."""
    return np.select(conditions, list(range(1, len(conditions) + 1)), default=default).astype(
        np.int8
    )


def _digits(year: IntArray, month: IntArray, day: IntArray) -> IntArray:
    """The eight digits of YYYYMMDD, one column each."""
    number = year * 10000 + month * 100 + day
    return np.stack([(number // 10**p) % 10 for p in range(7, -1, -1)], axis=1)


class Comparer:
    """Compares pairs of rows of two tables encoded by the same :class:`Encoder`."""

    def __init__(self, encoder: Encoder, guards: Guards) -> None:
        self.encoder = encoder
        self.guards = guards
        # The twins and parent/child guards: on unless the data shows no households at all
        # (see :func:`household_share`); the pipeline's resolver always keeps them on.
        self.relatives = True

    def compare(
        self,
        left: RecordTable,
        right: RecordTable,
        left_rows: IntArray,
        right_rows: IntArray,
        strict: bool = False,
    ) -> PairComparison:
        """Levels and guard flags of the pairs (left_rows[k], right_rows[k]).

        ``strict`` takes no given-name difference for a typo in the twins guard: used
        when deciding whether two records that both match a third are one person.
        """
        enc, li, ri = self.encoder, left_rows, right_rows
        facts = enc.name_facts()
        names = enc.names.array()
        gl, gr = left.given[li], right.given[ri]
        fl, fr = left.family[li], right.family[ri]
        levels = np.zeros((len(li), len(FIELDS)), dtype=np.int8)

        swapped = (gl >= 0) & (fl >= 0) & (gl == fr) & (fl == gr) & (gl != fl)
        swapped |= self._swapped_with_typos(gl, gr, fl, fr, names, swapped, facts)
        given_level, given_edits = self._given(gl, gr, facts, names, swapped)
        levels[:, 0] = given_level
        levels[:, 1] = self._family(fl, fr, facts, names, swapped)
        # A swap is one piece of evidence (two names agreeing crosswise): the given name's
        # `swapped` level carries it, and the family name is not counted a second time.
        levels[swapped, 1] = 0
        levels[:, 2] = self._birth(left, right, li, ri)
        sl, sr = left.sex[li], right.sex[ri]
        levels[:, 3] = np.where((sl == 0) | (sr == 0), 0, np.where(sl == sr, 1, 2))
        levels[:, 4] = self._address(left, right, li, ri)
        nl, nr = left.nhs[li], right.nhs[ri]
        levels[:, 5] = np.where((nl == 0) | (nr == 0), 0, np.where(nl == nr, 1, 2))
        levels[:, 6] = self._identifiers(left, right, li, ri)
        guards = self._guards(left, right, li, ri, levels, given_edits, facts, strict)
        return PairComparison(li, ri, levels, guards)

    @staticmethod
    def _swapped_with_typos(
        gl: IntArray,
        gr: IntArray,
        fl: IntArray,
        fr: IntArray,
        names: npt.NDArray[np.object_],
        exact: npt.NDArray[np.bool_],
        facts: Any,
    ) -> npt.NDArray[np.bool_]:
        """Given and family names exchanged, one or both mistyped ('Millar Isabella' against
        'Isabella Milloar'): each name close to the other side's other name (Jaro-Winkler >=
        CLOSE, one of them >= SIMILAR), while the names as given are not close. Only pairs
        whose initials agree crosswise are scored (a typo rarely hits the first letter)."""
        mask = (gl >= 0) & (gr >= 0) & (fl >= 0) & (fr >= 0) & (gl != gr) & (fl != fr) & ~exact
        mask &= (lookup(facts.initial, gl) == lookup(facts.initial, fr)) & (
            lookup(facts.initial, fl) == lookup(facts.initial, gr)
        )
        if not mask.any():
            return np.zeros(gl.shape, dtype=np.bool_)
        jw = JaroWinkler.normalized_similarity
        cross_a = _pair_scores(gl, fr, names, mask, jw)
        cross_b = _pair_scores(fl, gr, names, mask, jw)
        crossed = mask & (np.minimum(cross_a, cross_b) >= CLOSE) & (np.maximum(cross_a, cross_b) >= SIMILAR)
        if not crossed.any():
            return crossed
        direct = np.maximum(
            _pair_scores(gl, gr, names, crossed, jw), _pair_scores(fl, fr, names, crossed, jw)
        )
        return crossed & (direct < CLOSE)

    def _given(
        self,
        gl: IntArray,
        gr: IntArray,
        facts: Any,
        names: npt.NDArray[np.object_],
        swapped: npt.NDArray[np.bool_],
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64]]:
        both = (gl >= 0) & (gr >= 0)
        differ = both & (gl != gr) & ~swapped
        nick_codes = self.encoder.nickname_key()
        nickname = _pair_flags(
            gl,
            gr,
            differ & np.isin(gl, list(nick_codes)) & np.isin(gr, list(nick_codes)),
            lambda a, b: bool(nick_codes[a] & nick_codes[b]),
        )
        len_l, len_r = lookup(facts.length, gl), lookup(facts.length, gr)
        is_initial = differ & ((len_l == 1) | (len_r == 1))
        initial = is_initial & (lookup(facts.initial, gl) == lookup(facts.initial, gr))
        scored = differ & ~nickname & ~is_initial
        jw = _pair_scores(gl, gr, names, scored, JaroWinkler.normalized_similarity)
        edits = _pair_scores(gl, gr, names, scored, OSA.distance)
        phonetic = scored & (lookup(facts.metaphone, gl) == lookup(facts.metaphone, gr))
        level = _select(
            [
                both & (gl == gr),
                swapped,
                nickname,
                scored & (jw >= SIMILAR),
                phonetic,
                scored & (jw >= CLOSE),
                initial,
            ],
            default=COMPARISONS["given_name"].index("different"),
        )
        level[~both & ~swapped] = 0
        # Edit distance for the twins guard; names that are not compared count as far apart.
        edits[~scored] = np.where((both & (gl == gr))[~scored], 0.0, 99.0)
        edits[nickname] = 0.0
        return level, edits

    def _family(
        self,
        fl: IntArray,
        fr: IntArray,
        facts: Any,
        names: npt.NDArray[np.object_],
        swapped: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.int8]:
        both = (fl >= 0) & (fr >= 0)
        scored = both & (fl != fr) & ~swapped
        jw = _pair_scores(fl, fr, names, scored, JaroWinkler.normalized_similarity)
        phonetic = scored & (lookup(facts.metaphone, fl) == lookup(facts.metaphone, fr))
        part = _pair_flags(
            fl,
            fr,
            scored & (np.maximum(lookup(facts.parts, fl), lookup(facts.parts, fr)) > 1),
            lambda a, b: bool(set(names[a].split()) & set(names[b].split())),
        )
        level = _select(
            [
                both & (fl == fr),
                swapped,
                scored & (jw >= SIMILAR),
                phonetic,
                scored & (jw >= CLOSE),
                part,
            ],
            default=COMPARISONS["family_name"].index("different"),
        )
        level[~both & ~swapped] = 0
        return level

    @staticmethod
    def _birth(
        left: RecordTable,
        right: RecordTable,
        li: IntArray,
        ri: IntArray,
    ) -> npt.NDArray[np.int8]:
        yl, ml, dl = left.birth_year[li], left.birth_month[li], left.birth_day[li]
        yr, mr, dr = right.birth_year[ri], right.birth_month[ri], right.birth_day[ri]
        known = (yl > 0) & (yr > 0)
        full = known & (ml > 0) & (mr > 0)
        exact = full & (yl == yr) & (ml == mr) & (dl == dr)
        transposed = full & (yl == yr) & (ml == dr) & (dl == mr) & (ml != dl)
        one_digit = full & ((_digits(yl, ml, dl) != _digits(yr, mr, dr)).sum(axis=1) == 1)
        level = _select(
            [exact, transposed, one_digit, known & (yl == yr)],
            default=COMPARISONS["birth_date"].index("different"),
        )
        level[~known] = 0
        return level

    def _address(
        self,
        left: RecordTable,
        right: RecordTable,
        li: IntArray,
        ri: IntArray,
    ) -> npt.NDArray[np.int8]:
        ul, ur = left.uprn[li], right.uprn[ri]
        pl, pr = left.postcode[li], right.postcode[ri]
        ll, lr = left.line[li], right.line[ri]
        uprn_both = (ul >= 0) & (ur >= 0)
        pc_both = (pl >= 0) & (pr >= 0)
        line_both = (ll >= 0) & (lr >= 0)
        # token_sort_ratio is ratio of the lines with their words sorted: sorted once per line, not per pair.
        ratio = _pair_scores(ll, lr, self.encoder.sorted_lines(), line_both & (ll != lr), fuzz.ratio)
        same_line = line_both & ((ll == lr) | (ratio >= SAME_LINE))
        similar_line = line_both & (ratio >= SIMILAR_LINE)
        same_pc = pc_both & (pl == pr)
        level = _select(
            [
                uprn_both & (ul == ur),
                same_line & same_pc,
                similar_line & same_pc & ~uprn_both,
                same_pc & ~uprn_both,
                same_line & ~uprn_both,
                similar_line & ~uprn_both,
                pc_both & ~uprn_both & (left.sector[li] == right.sector[ri]),
                pc_both & ~uprn_both & (left.district[li] == right.district[ri]),
            ],
            default=COMPARISONS["address"].index("different"),
        )
        level[~(uprn_both | pc_both | line_both)] = 0
        return level

    @staticmethod
    def _identifiers(
        left: RecordTable,
        right: RecordTable,
        li: IntArray,
        ri: IntArray,
    ) -> npt.NDArray[np.int8]:
        level = np.zeros(li.shape, dtype=np.int8)
        if not left.identifiers or not right.identifiers:
            return level
        # Each row's one identifier and its system are codes of the encoder's (RecordTable.identifier):
        # pairs of rows with one identifier each compare codes; a row with several compares the sets.
        lp, rp = left.identifier[li], right.identifier[ri]
        both = (lp != NONE) & (rp != NONE)
        if not both.any():
            return level
        ls, rs = left.identifier_system[li], right.identifier_system[ri]
        single = both & (lp >= 0) & (rp >= 0)
        level[single] = np.where(lp[single] == rp[single], 1, np.where(ls[single] == rs[single], 2, 0))
        for k in np.flatnonzero(both & ~single).tolist():
            a, b = left.identifiers[int(li[k])], right.identifiers[int(ri[k])]
            level[k] = 1 if a & b else 2 if {s for s, _ in a} & {s for s, _ in b} else 0
        return level

    def _guards(
        self,
        left: RecordTable,
        right: RecordTable,
        li: IntArray,
        ri: IntArray,
        levels: npt.NDArray[np.int8],
        given_edits: npt.NDArray[np.float64],
        facts: Any,
        strict: bool,
    ) -> npt.NDArray[np.int16]:
        cfg = self.guards
        given, family, birth, address = levels[:, 0], levels[:, 1], levels[:, 2], levels[:, 4]
        # Any likeness of surname counts (a twin's record may carry a mistyped one), and so
        # does a missing one: it cannot tell the twins apart.
        same_family = family != level("family_name", "different")
        same_address = np.isin(
            address,
            [
                level("address", "uprn"),
                level("address", "line_and_postcode"),
                level("address", "similar_line_and_postcode"),
                level("address", "postcode"),
                level("address", "line"),
            ],
        )
        longest = np.maximum(
            lookup(facts.length, left.given[li]), lookup(facts.length, right.given[ri])
        )
        typo = (
            (given_edits <= cfg.twin_max_given_edits)
            & (longest >= cfg.twin_typo_min_length)
            & (not strict)
        )
        given_differs = ~np.isin(
            given,
            [
                0,
                level("given_name", "exact"),
                level("given_name", "swapped"),
                level("given_name", "nickname"),
                level("given_name", "initial"),
            ],
        )
        # Twins share a birth date; a record of one may carry it mistyped, so near dates count too.
        same_birth = np.isin(
            birth,
            [
                level("birth_date", "exact"),
                level("birth_date", "transposed"),
                level("birth_date", "one_digit"),
            ],
        )
        # Without a given name to tell them apart, a different sex still tells twins apart.
        sex_differs = levels[:, 3] == level("sex", "different")
        twins = same_birth & same_family & same_address & ((given_differs & ~typo) | sex_differs)

        same_given = np.isin(
            given,
            [
                level("given_name", "exact"),
                level("given_name", "nickname"),
                level("given_name", "similar"),
                level("given_name", "phonetic"),
                level("given_name", "close"),
                level("given_name", "initial"),
            ],
        )
        years_apart = np.abs(left.birth_year[li] - right.birth_year[ri])
        household = same_given & same_family & same_address
        generation = household & (birth > 0) & (years_apart >= cfg.parent_child_min_years)
        one_digit = birth == level("birth_date", "one_digit")
        # Birth dates that conflict outright, at the same name and address, are a parent and
        # child or a wrong date: a person decides which.
        conflict = household & (birth == level("birth_date", "different")) & ~generation

        flags = np.zeros(li.shape, dtype=np.int16)
        if not self.relatives:
            twins = generation = conflict = np.zeros(li.shape, dtype=np.bool_)
        flags |= np.where(twins, TWINS, 0).astype(np.int16)
        flags |= np.where(generation & ~one_digit, PARENT_CHILD, 0).astype(np.int16)
        flags |= np.where((generation & one_digit) | conflict, PARENT_CHILD_OR_TYPO, 0).astype(
            np.int16
        )
        if cfg.deceased_needs_review:
            flags |= np.where(left.deceased[li] != right.deceased[ri], DECEASED, 0).astype(np.int16)
        verified = left.nhs_verified[li] & right.nhs_verified[ri]
        nhs_same = left.nhs[li] == right.nhs[ri]
        flags |= np.where(verified & nhs_same, NHS_VERIFIED_SAME, 0).astype(np.int16)
        flags |= np.where(verified & ~nhs_same, NHS_VERIFIED_DIFFERENT, 0).astype(np.int16)
        # The encoder keeps only numbers whose check digit is valid (0 = none): two of them that
        # differ say two people, verified or not; at most a review, never an automatic link.
        both = (left.nhs[li] > 0) & (right.nhs[ri] > 0)
        flags |= np.where(both & ~nhs_same & ~verified, NHS_CONFLICT, 0).astype(np.int16)
        return flags


def household_share(comparer: Comparer, table: RecordTable, block_pairs: int = 10**6) -> float:
    """Share of a file's records that share their address and surname with someone clearly
    someone else: a given name that differs, a birth date that differs, and either the other
    sex or a birth date a generation away with another month and day.

    Twins and a parent and child are only possible where a file holds households. A file in
    which no record has such a housemate (a public benchmark of unrelated people) gives the
    relatives' guards nothing to protect; every council's file of people has them.
    """
    family, postcode = table.family.astype(np.int64), table.postcode.astype(np.int64)
    keys = np.where((family >= 0) & (postcode >= 0), family * 1_000_003 + postcode, MISSING)
    if len(table) < 2:
        return 0.0
    members: set[int] = set()
    for a, b, _ in Blocker([keys], None, block_pairs, 10**7).chunks():
        if not len(a):
            continue
        lv = comparer.compare(table, table, a, b).levels
        apart = (
            np.isin(lv[:, 4], [level("address", "uprn"), level("address", "line_and_postcode")])
            & (lv[:, 1] == level("family_name", "exact"))
            & (lv[:, 0] == level("given_name", "different"))
            & (lv[:, 2] == level("birth_date", "different"))
        )
        ya, yb = table.birth_year[a], table.birth_year[b]
        ma, mb, da, db = table.birth_month[a], table.birth_month[b], table.birth_day[a], table.birth_day[b]
        generation = (np.abs(ya - yb) >= 12) & (ma > 0) & (mb > 0) & (ma != mb) & (da != db)
        clear = apart & ((lv[:, 3] == level("sex", "different")) | generation)
        members.update(a[clear].tolist())
        members.update(b[clear].tolist())
    return len(members) / len(table)


__all__ = [
    "AMBIGUOUS",
    "COMPARISONS",
    "DECEASED",
    "FIELDS",
    "MAX_LEVELS",
    "MISSING",
    "NHS_CONFLICT",
    "NHS_VERIFIED_DIFFERENT",
    "NHS_VERIFIED_SAME",
    "PARENT_CHILD",
    "PARENT_CHILD_OR_TYPO",
    "TWINS",
    "Comparer",
    "PairComparison",
    "household_share",
    "level",
]
