"""Bulk linking of CSV files for migration and data cleansing (``carehub match`` / ``dedupe``).

Rows are streamed from the files into column codes (a million rows fit in a
few hundred MB); candidate pairs are made and scored in bounded chunks and the
kept pairs written out as they come, so no list of all pairs is ever held.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hub.errors import QuarantineError
from hub.identity.blocking import Blocker
from hub.identity.comparisons import household_share
from hub.identity.config import IdentityConfig
from hub.identity.engine import LINK, Matcher
from hub.identity.record import MatchRecord
from hub.identity.table import RecordTable

OUTPUT_COLUMNS = ("left_id", "right_id", "score", "decision")


@dataclass(frozen=True, slots=True)
class BulkReport:
    """What a bulk run did: records read, pairs compared, matches and reviews written, seconds."""

    left_records: int
    right_records: int
    pairs_compared: int
    matches: int
    reviews: int
    seconds: float
    household_share: float = 0.0
    relative_guards: bool = True


def read_records(path: Path) -> Iterator[MatchRecord]:
    """Stream the records of a CSV file (any subset of the input columns, in any order)."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise QuarantineError("FILE_UNREADABLE", f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            return
        for number, row in enumerate(reader, start=1):
            yield MatchRecord.from_row(
                {(k or "").strip().lower(): v for k, v in row.items()}, number
            )


def link_tables(
    matcher: Matcher,
    left: RecordTable,
    right: RecordTable | None,
    on_progress: Callable[[int], None] | None = None,
    blocker: Blocker | None = None,
) -> Iterator[tuple[str, str, float, str]]:
    """(left id, right id, score, 'match' or 'review') for every kept pair.

    Reviews are written as they are found; links are held (one small tuple per match)
    until every pair is scored, because a link is ambiguous if either record also
    links to someone else, and that can only be known at the end.
    """
    other = left if right is None else right
    links: list[tuple[npt.NDArray[np.int64], ...]] = []
    for batch in matcher.link(left, right, on_progress, blocker):
        linked = batch.decisions == LINK
        links.append(
            (
                batch.pairs.left_rows[linked],
                batch.pairs.right_rows[linked],
                batch.probability[linked],
                batch.weights[linked].sum(axis=1).astype(np.float64),
            )
        )
        for li, ri, score in zip(
            batch.pairs.left_rows[~linked].tolist(),
            batch.pairs.right_rows[~linked].tolist(),
            batch.probability[~linked].tolist(),
            strict=True,
        ):
            yield left.ids[li], other.ids[ri], score, "review"
    if not links:
        return
    li_all = np.concatenate([x[0] for x in links])
    ri_all = np.concatenate([x[1] for x in links])
    scores = np.concatenate([x[2] for x in links])
    weights = np.concatenate([x[3] for x in links])
    ambiguous = matcher.ambiguous(left, right, li_all, ri_all, weights)
    for li, ri, score, unsure in zip(
        li_all.tolist(), ri_all.tolist(), scores.tolist(), ambiguous.tolist(), strict=True
    ):
        yield left.ids[li], other.ids[ri], score, "review" if unsure else "match"


def match_files(
    config: IdentityConfig,
    left_path: Path,
    right_path: Path | None,
    out_path: Path,
    on_plan: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    estimate: bool | None = None,
) -> BulkReport:
    """Link ``left_path`` to ``right_path`` (or deduplicate ``left_path`` alone) into ``out_path``.

    ``on_plan`` receives the number of candidate pairs planned, ``on_progress`` each
    batch's count; weights are estimated from the files unless ``estimate`` is False.
    """
    started = time.perf_counter()
    matcher = Matcher(config)
    left = matcher.encoder.encode(read_records(left_path))
    right = matcher.encoder.encode(read_records(right_path)) if right_path else None
    # Twins and parents with children need households: a large file with none (unrelated people)
    # switches the relatives' guards off; a small one proves nothing and keeps them.
    tables = [t for t in (left, right) if t is not None]
    share = max(household_share(matcher.comparer, t) for t in tables)
    matcher.comparer.relatives = (
        share >= config.guards.household_min_share
        or min(len(t) for t in tables) < config.guards.household_min_records
    )
    if config.estimation.estimate if estimate is None else estimate:
        matcher.estimate(left, right)
    blocker = matcher.blocker(left, right)
    if on_plan is not None:
        on_plan(blocker.planned_pairs)
    compared = 0
    counts = {"match": 0, "review": 0}

    def progress(generated: int) -> None:
        nonlocal compared
        compared += generated
        if on_progress is not None:
            on_progress(generated)

    with out_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(OUTPUT_COLUMNS)
        for left_id, right_id, score, decision in link_tables(
            matcher, left, right, progress, blocker
        ):
            writer.writerow((left_id, right_id, f"{score:.6f}", decision))
            counts[decision] += 1
    return BulkReport(
        len(left),
        len(right) if right is not None else len(left),
        compared,
        counts["match"],
        counts["review"],
        time.perf_counter() - started,
        share,
        matcher.comparer.relatives,
    )
