"""Command line of identity resolution: bulk ``match`` / ``dedupe`` and the review queue.

``carehub match LEFT.csv RIGHT.csv --out links.csv`` and ``carehub dedupe FILE.csv
--out links.csv`` link files for migration and cleansing (columns: id, given_name,
family_name, birth_date, sex, address_line, locality, postcode, nhs_number - any may
be absent); ``carehub identity review list|accept|reject`` works the review queue and
``carehub identity merge|unmerge`` merges two people or undoes a merge.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.identity.bulk import BulkReport, match_files
from hub.identity.config import load_identity_config
from hub.store.db import open_store
from hub.store.identity import LINK, open_reviews, record_link
from hub.store.merges import decide, merge, unmerge

identity_app = typer.Typer(help="Identity resolution: the review queue, merge and unmerge.", no_args_is_help=True)
review_app = typer.Typer(help="Pairs waiting for a person to decide.", no_args_is_help=True)
identity_app.add_typer(review_app, name="review")

OutOption = Annotated[
    Path, typer.Option("--out", "-o", help="Where to write left_id,right_id,score,decision.")
]
EstimateOption = Annotated[
    bool,
    typer.Option(
        "--estimate/--no-estimate",
        help="Estimate weights from the files (default) or use config's.",
    ),
]
UserOption = Annotated[
    str | None, typer.Option("--user", help="Who decides (recorded); default: the login name.")
]


def _run(left: Path, right: Path | None, out: Path, estimate: bool) -> BulkReport:
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("reading", total=None)

        def planned(total: int) -> None:
            progress.update(task, description="comparing pairs", total=max(total, 1), completed=0)

        report = match_files(
            load_identity_config(),
            left,
            right,
            out,
            on_plan=planned,
            on_progress=lambda n: progress.advance(task, n),
            estimate=estimate,
        )
    console.print(
        f"{report.left_records:,} x {report.right_records:,} records, "
        f"{report.pairs_compared:,} pairs compared in {report.seconds:.1f} s: "
        f"{report.matches:,} match, {report.reviews:,} review -> {out}"
    )
    return report


def match_command(
    left: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="First CSV file.")],
    right: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Second CSV file.")],
    out: OutOption,
    estimate: EstimateOption = True,
) -> None:
    """Link the people of two CSV files: pairs that are one person (match) or may be (review)."""
    _run(left, right, out, estimate)


def dedupe_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file to clean.")],
    out: OutOption,
    estimate: EstimateOption = True,
) -> None:
    """Find the people recorded more than once in one CSV file."""
    _run(file, None, out, estimate)


@review_app.command("list")
def review_list(
    limit: Annotated[int, typer.Option(help="How many to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Evidence as JSON lines.")] = False,
) -> None:
    """Open reviews, oldest first, with score and per-field evidence."""
    store = open_store()
    with store.session() as session:
        reviews = open_reviews(session, limit)
        if as_json:
            for r in reviews:
                typer.echo(
                    json.dumps(
                        {
                            "id": r.id,
                            "person_a": r.person_a,
                            "person_b": r.person_b,
                            "score": r.score,
                            "evidence": r.evidence,
                        }
                    )
                )
            return
        table = Table("id", "person a", "person b", "score", "why")
        for r in reviews:
            fields = ", ".join(f"{f['field']}={f['level']}" for f in r.evidence.get("fields", []))
            guards = "; ".join(g["guard"] for g in r.evidence.get("guards", []))
            table.add_row(
                str(r.id), r.person_a, r.person_b, f"{r.score:.3f}", f"{fields} {guards}".strip()
            )
        Console().print(table)


@review_app.command("accept")
def review_accept(
    pair_id: Annotated[int, typer.Argument(help="Review id.")],
    user: UserOption = None,
) -> None:
    """They are one person: merge them (the longer-known record survives)."""
    with open_store().session() as session:
        review = decide(session, pair_id, True, user or getpass.getuser())
        typer.echo(f"review {review.id} accepted: merge {review.merge_id}")


@review_app.command("reject")
def review_reject(
    pair_id: Annotated[int, typer.Argument(help="Review id.")],
    user: UserOption = None,
) -> None:
    """They are two people: keep them apart and never ask again."""
    with open_store().session() as session:
        review = decide(session, pair_id, False, user or getpass.getuser())
        typer.echo(f"review {review.id} rejected")


@identity_app.command("merge")
def merge_command(
    survivor: Annotated[str, typer.Argument(help="Person id that stays.")],
    merged: Annotated[str, typer.Argument(help="Person id folded into the survivor.")],
    user: UserOption = None,
) -> None:
    """Merge two people you know to be one (change events go to the outbox)."""
    who = user or getpass.getuser()
    with open_store().session() as session:
        history = merge(session, survivor, merged, who)
        record_link(session, survivor, merged, 1.0, {"reason": f"merged by a person (merge {history.id})"},
                    LINK, who)
        typer.echo(f"merge {history.id}: {merged} merged into {survivor}")


@identity_app.command("unmerge")
def unmerge_command(
    merge_id: Annotated[int, typer.Argument(help="Merge id (shown by merge and review accept).")],
    user: UserOption = None,
) -> None:
    """Undo a merge exactly; the two are remembered as different people."""
    with open_store().session() as session:
        history = unmerge(session, merge_id, user or getpass.getuser())
        typer.echo(f"merge {history.id} undone: {history.merged_id} and {history.survivor_id} are two people again")
