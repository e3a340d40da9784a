"""Persons encoded once and kept across a sync's batches compare exactly as a fresh encoding does."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from rapidfuzz import fuzz

from hub.identity import Matcher, MatchRecord, load_identity_config
from hub.identity.synthetic import linkage_task
from hub.identity.table import EncodedPersons, Encoder, IntArray, RecordTable, normalised_fields


def _records(rows: list[dict[str, str]], prefix: str, rng: random.Random) -> list[MatchRecord]:
    """The synthetic rows as match records; some with one local id, some with two, some sharing one."""
    out = []
    for k, row in enumerate(rows):
        choice = rng.random()
        identifiers: tuple[tuple[str, str], ...] = ()
        if choice < 0.4:
            identifiers = (("escr", f"C{k % 50}"),)
        elif choice < 0.5:
            identifiers = (("escr", f"C{k % 50}"), ("acute", f"H{k % 7}"))
        elif choice < 0.6:
            identifiers = (("acute", f"H{k % 7}"),)
        out.append(MatchRecord(id=f"{prefix}{k}", given_name=row["given_name"] or None,
                               family_name=row["family_name"] or None, birth_date=row["birth_date"] or None,
                               sex=row["sex"] or None, address_line=row["address_line"] or None,
                               postcode=row["postcode"] or None, nhs_number=row["nhs_number"] or None,
                               identifiers=identifiers))
    return out


def _evidence(matcher: Matcher, left: RecordTable, right: RecordTable, li: IntArray, ri: IntArray) -> list[Any]:
    scored = matcher.score(left, right, li, ri)
    return [scored.evidence(k).as_json() for k in range(len(li))]


def test_kept_codes_score_every_pair_as_a_fresh_encoding_of_each_batch() -> None:
    config = load_identity_config()
    rng = random.Random(3)
    task = linkage_task(150, 150, seed=5)
    known = _records(task.left, "p", rng)
    batches = [_records(task.right[:75], "a", rng), _records(task.right[75:], "b", rng)]
    kept = EncodedPersons(Encoder())
    for batch in batches:
        li = np.array([r for r in range(len(batch)) for _ in range(len(known))], dtype=np.int64)
        ri = np.tile(np.arange(len(known), dtype=np.int64), len(batch))
        # Fresh: this batch and its candidates encoded together, as outside a sync.
        fresh = Matcher(config, encoder=Encoder())
        left = fresh.encoder.encode(batch)
        right = fresh.encoder.encode(known)
        expected = _evidence(fresh, left, right, li, ri)
        # Kept: the known persons encoded once (the first batch), the batch over the same vocabularies.
        shared = Matcher(config, encoder=kept.encoder)
        if not kept.row_of:
            kept.add([r.id for r in known], [normalised_fields(r) for r in known],
                     {k: frozenset(r.identifiers) for k, r in enumerate(known) if r.identifiers})
        rows = np.array([kept.row_of[r.id] for r in known], dtype=np.int64)
        batch_table = kept.encoder.encode(batch)
        assert _evidence(shared, batch_table, kept.table, li, rows[ri]) == expected
        # The pairs cover local ids that agree and that conflict.
        assert any(level["level"] == "conflicting" for e in expected for level in e["fields"])
        assert any(level["level"] == "shared" for e in expected for level in e["fields"])


def test_a_forgotten_person_is_encoded_again_in_a_new_row() -> None:
    kept = EncodedPersons(Encoder())
    first = MatchRecord(id="p1", given_name="Ann", family_name="Lee", identifiers=(("escr", "1"),))
    (row,) = kept.add(["p1"], [normalised_fields(first)], {0: frozenset(first.identifiers)})
    kept.forget("p1")
    assert "p1" not in kept.row_of
    moved = MatchRecord(id="p1", given_name="Ann", family_name="Leigh")
    (again,) = kept.add(["p1"], [normalised_fields(moved)], {})
    assert again != row and kept.row_of["p1"] == again
    assert kept.table.family[row] != kept.table.family[again]
    assert kept.table.identifiers == {row: frozenset(first.identifiers)}


def test_address_lines_compare_by_their_sorted_words_as_token_sort_ratio_does() -> None:
    encoder = Encoder()
    lines = ["flat 2 12 rowan road", "12 rowan road flat 2", "rowan rd 12", "the old mill house", "mill house the old"]
    encoder.lines.code_all(lines)
    sorted_lines = encoder.sorted_lines()
    for a in range(len(lines)):
        for b in range(len(lines)):
            assert fuzz.ratio(sorted_lines[a], sorted_lines[b]) == fuzz.token_sort_ratio(lines[a], lines[b])
