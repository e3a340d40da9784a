"""Evaluation: precision, recall and F1 of identity matching on labelled synthetic duplicates.

Scenarios: linking two files without NHS numbers (legacy data), with NHS numbers on 70% of
records, and deduplicating one file. Errors include typos, nicknames, initials, swapped
names, married names, moved house, transposed and mistyped dates, missing fields; the
population holds twins and same-name parents and children.

    .venv/bin/python bench/match_eval.py [--size 5000] [--seed 11]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from hub.identity.bulk import match_files
from hub.identity.config import load_identity_config
from hub.identity.synthetic import LinkageTask, dedupe_task, evaluate, linkage_task, write_csv


def run(name: str, task: LinkageTask, dedupe: bool) -> None:
    """Match one scenario's files and print its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        left, right, out = folder / "left.csv", folder / "right.csv", folder / "links.csv"
        write_csv(left, task.left)
        if not dedupe:
            write_csv(right, task.right)
        report = match_files(load_identity_config(), left, None if dedupe else right, out)
        with out.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    matched = [(r["left_id"], r["right_id"]) for r in rows if r["decision"] == "match"]
    either = [(r["left_id"], r["right_id"]) for r in rows]
    s = evaluate(matched, task.truth, ordered=not dedupe)
    r = evaluate(either, task.truth, ordered=not dedupe)
    print(
        f"{name:<28} P {s.precision:.4f}  R {s.recall:.4f}  F1 {s.f1:.4f}  "
        f"| with review: R {r.recall:.4f}  reviews {report.reviews:,}  "
        f"| relatives auto-linked {len(set(matched) & task.relatives)}  ({report.seconds:.1f} s)"
    )


def main() -> None:
    """Print the figures of each scenario."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    n, seed = args.size, args.seed
    run("link, no NHS numbers", linkage_task(n, n, seed=seed), dedupe=False)
    run("link, NHS numbers on 70%", linkage_task(n, n, seed=seed, with_nhs=True), dedupe=False)
    run("dedupe one file", dedupe_task(n, seed=seed), dedupe=True)


if __name__ == "__main__":
    main()
