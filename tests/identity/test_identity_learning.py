"""The learned model: EM estimates of m, blocking that survives swaps and transpositions,
the relatives' guards tied to households in the data, and dates as FEBRL writes them."""

from __future__ import annotations

import numpy as np

from hub.identity import Matcher, MatchRecord, load_identity_config
from hub.identity.blocking import block_keys
from hub.identity.comparisons import COMPARISONS, FIELDS, household_share
from hub.identity.normalise import birth_parts, postcode_parts
from hub.identity.synthetic import linkage_task


def _tables(task, method: str = "auto"):  # type: ignore[no-untyped-def]
    config = load_identity_config()
    config = config.model_copy(
        update={"estimation": config.estimation.model_copy(update={"method": method})}
    )
    matcher = Matcher(config)
    left = matcher.encoder.encode(MatchRecord.from_row(r) for r in task.left)
    right = matcher.encoder.encode(MatchRecord.from_row(r) for r in task.right)
    return matcher, left, right


def test_em_learns_the_weights_and_the_prior_from_the_data() -> None:
    task = linkage_task(3000, 3000, seed=21)
    matcher, left, right = _tables(task, "em")
    configured = matcher.model.m.copy()
    model = matcher.estimate(left, right, seed=1)
    assert matcher.em_iterations > 0
    assert not np.allclose(model.m, configured)
    true_prior = len(task.truth) / (len(left) * len(right))
    # The learned prior is the right order of magnitude (EM over-counts households: docs/identity.md).
    assert true_prior / 10 < model.prior < true_prior * 10
    # Every level's m is a probability and each field's levels (after missing) sum to one.
    for f, name in enumerate(FIELDS):
        n = len(COMPARISONS[name])
        assert np.all(model.m[f, 1:n] > 0)
        assert abs(model.m[f, 1:n].sum() - 1) < 1e-6


def test_tiny_input_keeps_the_configured_weights() -> None:
    task = linkage_task(20, 20, seed=5)
    matcher, left, right = _tables(task)
    configured = matcher.model.m.copy()
    matcher.estimate(left, right)
    assert matcher.em_iterations == 0
    assert np.allclose(matcher.model.m, configured)


def test_blocking_meets_swapped_names_and_transposed_dates() -> None:
    matcher = Matcher(load_identity_config())
    a = MatchRecord.from_row({"id": "a", "given_name": "Rhys", "family_name": "Pugh", "birth_date": "1950-03-07"})
    b = MatchRecord.from_row({"id": "b", "given_name": "Pugh", "family_name": "Rhys", "birth_date": "1951-04-17"})
    c = MatchRecord.from_row({"id": "c", "given_name": "Rees", "family_name": "Powell", "birth_date": "1950-07-03"})
    table = matcher.encoder.encode([a, b, c])
    names = block_keys(table, matcher.encoder, "given_phonetic+family_phonetic")
    assert names[0] == names[1] != names[2]
    dates = block_keys(table, matcher.encoder, "birth_date_any_order")
    assert dates[0] == dates[2] != dates[1]
    assert block_keys(table, matcher.encoder, "birth_date")[0] != block_keys(table, matcher.encoder, "birth_date")[2]


def test_relatives_guards_follow_households_in_the_data() -> None:
    task = linkage_task(3000, 3000, seed=8)
    matcher, left, _ = _tables(task)
    assert household_share(matcher.comparer, left) >= load_identity_config().guards.household_min_share
    # The same people with every address made unique: no one shares a home, nothing to guard.
    alone = [dict(r, address_line=f"{k} Lone Road", postcode="") for k, r in enumerate(task.left)]
    table = matcher.encoder.encode(MatchRecord.from_row(r) for r in alone)
    assert household_share(matcher.comparer, table) == 0.0


def test_febrl_dates_and_numeric_postcodes_are_read() -> None:
    assert birth_parts("19560409") == (1956, 4, 9)
    assert birth_parts("19561309") == (1956, 0, 0)
    assert postcode_parts("2119") == ("2119", "2119", "2119")
    assert postcode_parts("LS62AB") == ("LS6 2AB", "LS6 2", "LS6")
    assert postcode_parts("UNKNOWN") is None


def test_the_block_cap_says_how_many_pairs_it_skipped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hub.identity.bulk import match_files
    from hub.identity.synthetic import write_csv

    task = linkage_task(300, 300, seed=9)
    write_csv(tmp_path / "left.csv", task.left)
    write_csv(tmp_path / "right.csv", task.right)
    config = load_identity_config()
    capped = config.model_copy(update={"blocking": config.blocking.model_copy(update={"max_block_pairs": 2})})
    wide = match_files(config, tmp_path / "left.csv", tmp_path / "right.csv", tmp_path / "a.csv")
    narrow = match_files(capped, tmp_path / "left.csv", tmp_path / "right.csv", tmp_path / "b.csv")
    assert wide.skipped_pairs == 0
    assert narrow.skipped_pairs > 0
    assert narrow.pairs_compared < wide.pairs_compared
