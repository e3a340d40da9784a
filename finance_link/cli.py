"""`carehub finance ...`: derive commitments, export the feed as CSV, pick up actuals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from finance_link.commitments import derive_commitments
from finance_link.feed import write_csv
from hub.settings import get_settings
from hub.store.db import Store

app = typer.Typer(help="The finance link: commitments, the feed, actuals.", no_args_is_help=True)


def _store() -> Store:
    settings = get_settings()
    return Store(settings.database_url, echo=settings.sql_echo)


@app.command("derive")
def derive() -> None:
    """Derive commitment versions from every care plan and service change not yet read."""
    store = _store()
    try:
        result = derive_commitments(store, get_settings())
    finally:
        store.dispose()
    typer.echo(" ".join(f"{k}={v}" for k, v in result.as_dict().items()))


@app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    since: Annotated[str | None, typer.Option("--since", help="The cursor the last export printed.")] = None,
) -> None:
    """Write every commitment version after SINCE to a CSV (the feed's columns); print the next cursor."""
    store = _store()
    try:
        with store.session() as session, out.open("w", encoding="utf-8", newline="") as fh:
            count, cursor = write_csv(session, since, fh)
    finally:
        store.dispose()
    typer.echo(f"{count} versions written to {out}; next cursor {cursor}")
