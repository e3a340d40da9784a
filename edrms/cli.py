"""`carehub edrms ...`: pull the EDRMS now, refresh links and retention after changes, report what is due."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from edrms.jobs import open_repository, refresh_documents
from edrms.pull import DocumentPull
from edrms.retention import Schedule
from edrms.service import retention_report
from hub.cli import open_store
from hub.errors import ConfigError
from hub.settings import get_settings
from hub.store.migrate import upgrade

app = typer.Typer(help="EDRMS (CMIS 1.1): documents linked to people and cases, retention.", no_args_is_help=True)


@app.command("pull")
def pull(max_pages: Annotated[int | None, typer.Option(help="Stop after this many pages.")] = None) -> None:
    """Pull new and changed documents now and link them (what the scheduled job does)."""
    settings = get_settings()
    store = open_store()
    upgrade(store.engine)
    repository = open_repository(settings.edrms)
    try:
        result = DocumentPull(store, repository, settings.edrms, Schedule.from_settings(settings)).run(
            max_pages=max_pages)
    finally:
        repository.close()
        store.dispose()
    typer.echo(f"{settings.edrms.repository} ({result.mode}): {result.read} read in {result.pages} pages, "
               f"{result.new} new, {result.changed} changed, {result.linked} linked, {result.orphans} orphans, "
               f"{result.deleted} deleted, {result.events} events")


@app.command("refresh")
def refresh() -> None:
    """Re-link and recompute retention for documents whose people or cases changed (merge, death, closure)."""
    settings = get_settings()
    store = open_store()
    try:
        out = refresh_documents(store, settings)
    finally:
        store.dispose()
    typer.echo(json.dumps(out))


@app.command("retention-report")
def report(
    due_before: Annotated[str | None, typer.Option("--due-before", help="ISO date; default 90 days from today.")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Documents whose review date falls before the date: action review, or held by a legal hold."""
    try:
        until = date.fromisoformat(due_before) if due_before else date.today() + timedelta(days=90)
    except ValueError as exc:
        raise ConfigError(f"--due-before {due_before!r} is not an ISO date (YYYY-MM-DD)") from exc
    store = open_store()
    try:
        with store.session() as session:
            rows = retention_report(session, due_before=until, limit=100_000)
    finally:
        store.dispose()
    for row in rows:  # ids only: a title may carry a name
        row.pop("title", None)
    if as_json:
        typer.echo(json.dumps({"due_before": until.isoformat(), "documents": rows}, indent=2))
        return
    table = Table(title=f"Documents due for review before {until.isoformat()} ({len(rows)})")
    for col in ("id", "person", "class", "review date", "rule", "action", "legal holds"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["person_id"] or "", r["record_class"] or "", r["review_date"] or "",
                      r["rule"] or "", r["action"], ", ".join(r["legal_holds"]))
    Console(width=160).print(table)
