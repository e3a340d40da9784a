"""Benchmark: link N x N synthetic people with no NHS numbers, Care Hub's engine beside Splink 4.

Both read the same two CSV files in the same run. For each size it prints wall time, pairs
compared, precision, recall, F1 and how many twins (or same-name parent and child) were
auto-linked. Targets: F1 at least Splink's, faster than Splink, no relative ever
auto-linked, 100k x 100k in under 60 s.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/match.py                  # 5,000 and 100,000
    .venv/bin/python bench/match.py --sizes 2000     # quick
    .venv/bin/python bench/match.py --no-splink

Splink's "match" is a pair with match probability >= 0.5 (its default cut); ours is the
`link` decision (config/identity.toml thresholds.link). Splink's best F1 over a few
cut-offs is printed as well, to be fair to it.
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from hub.identity.bulk import match_files
from hub.identity.config import load_identity_config
from hub.identity.synthetic import LinkageTask, Scores, evaluate, linkage_task, write_csv


def run_ours(task: LinkageTask, left: Path, right: Path, folder: Path) -> dict[str, Any]:
    """Link the files with the hub's engine (`carehub match`'s code path)."""
    out = folder / "links.csv"
    report = match_files(load_identity_config(), left, right, out)
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    matched = [(r["left_id"], r["right_id"]) for r in rows if r["decision"] == "match"]
    return {
        "seconds": report.seconds,
        "pairs": report.pairs_compared,
        "scores": evaluate(matched, task.truth),
        "relatives": len(set(matched) & task.relatives),
        "reviews": report.reviews,
    }


def _prepare(path: Path) -> Any:
    """Splink's input: the CSV with names lower-cased and postcodes spaced, blanks as nulls."""
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in ("given_name", "family_name", "address_line"):
        frame[column] = frame[column].str.strip().str.lower()
    compact = frame["postcode"].str.replace(" ", "", regex=False).str.upper()
    frame["postcode"] = compact.where(
        compact.str.len() < 5, compact.str[:-3] + " " + compact.str[-3:]
    )
    return frame.replace({"": None})


def run_splink(task: LinkageTask, left: Path, right: Path) -> dict[str, Any]:
    """Link the same files with Splink 4 on DuckDB, trained the way its tutorials train."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    from splink.blocking_analysis import (
        cumulative_comparisons_to_be_scored_from_blocking_rules_data,
    )

    # Splink narrates its training at INFO; the benchmark prints only figures.
    logging.disable(logging.WARNING)
    started = time.perf_counter()
    frames = [_prepare(left), _prepare(right)]
    rules = [
        block_on("birth_date"),
        block_on("family_name", "substr(birth_date, 1, 4)"),
        block_on("postcode", "substr(given_name, 1, 1)"),
        block_on("family_name", "substr(birth_date, 6, 5)"),
        block_on("given_name", "substr(birth_date, 1, 4)"),
        block_on("given_name", "family_name"),
    ]
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="id",
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.PostcodeComparison("postcode"),
            cl.JaroWinklerAtThresholds("address_line", [0.95, 0.88]),
        ],
        blocking_rules_to_generate_predictions=rules,
    )
    db_api = DuckDBAPI()
    linker = Linker(frames, settings, db_api)
    linker.training.estimate_probability_two_random_records_match(
        [
            block_on("given_name", "family_name", "birth_date"),
            block_on("family_name", "birth_date", "postcode"),
        ],
        recall=0.7,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("given_name", "family_name")
    )
    predictions = linker.inference.predict(threshold_match_probability=0.3).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    counts = cumulative_comparisons_to_be_scored_from_blocking_rules_data(
        table_or_tables=frames,
        blocking_rules=rules,
        link_type="link_only",
        db_api=DuckDBAPI(),
        unique_id_column_name="id",
    )
    pairs = int(counts["row_count"].sum())
    scored = list(
        zip(predictions["id_l"], predictions["id_r"], predictions["match_probability"], strict=True)
    )

    def at(cut: float) -> list[tuple[str, str]]:
        return [(a, b) for a, b, p in scored if p >= cut]

    default = at(0.5)
    best = max(
        (evaluate(at(cut), task.truth) for cut in (0.5, 0.8, 0.9, 0.95, 0.99)), key=lambda s: s.f1
    )
    return {
        "seconds": seconds,
        "pairs": pairs,
        "scores": evaluate(default, task.truth),
        "best": best,
        "relatives": len(set(default) & task.relatives),
    }


def line(name: str, result: dict[str, Any]) -> str:
    """One row of the results table."""
    s: Scores = result["scores"]
    return (
        f"  {name:<8} {result['seconds']:>8.1f} s {result['pairs']:>12,} pairs  "
        f"P {s.precision:.4f}  R {s.recall:.4f}  F1 {s.f1:.4f}  "
        f"relatives auto-linked {result['relatives']}"
    )


def main() -> None:
    """Run the benchmark at each size and print both engines' figures and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-splink", action="store_true")
    args = parser.parse_args()
    for size in args.sizes:
        task = linkage_task(size, size, seed=args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            left, right = folder / "left.csv", folder / "right.csv"
            write_csv(left, task.left)
            write_csv(right, task.right)
            print(
                f"{size:,} x {size:,} people, no NHS numbers; {len(task.truth):,} true pairs, "
                f"{len(task.relatives):,} twin/parent-child pairs across the files"
            )
            ours = run_ours(task, left, right, folder)
            print(line("carehub", ours) + f"  (+{ours['reviews']:,} to review)")
            if args.no_splink:
                continue
            theirs = run_splink(task, left, right)
            print(line("splink", theirs) + f"  (best F1 over cut-offs {theirs['best'].f1:.4f})")
            print(
                f"  ratio    {theirs['seconds'] / ours['seconds']:.1f}x faster, "
                f"F1 {ours['scores'].f1 - theirs['scores'].f1:+.4f} vs Splink at 0.5, "
                f"{ours['scores'].f1 - theirs['best'].f1:+.4f} vs its best cut-off"
            )


if __name__ == "__main__":
    main()
