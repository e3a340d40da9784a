"""`carehub gazetteer ...`: load DTF 7.3 files, match an address, watch a drop folder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from gazetteer.effects import update_people
from gazetteer.load import load_file
from gazetteer.matcher import AddressMatcher
from gazetteer.pickup import pick_up
from hub.cli import open_store
from hub.errors import HubError

app = typer.Typer(
    help="Corporate gazetteer (LLPG): load DTF 7.3 feeds, match addresses to UPRNs.",
    no_args_is_help=True,
)


def _fail(exc: HubError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="A DTF 7.3 full supply or change-only update.")],
) -> None:
    """Load one file (full or COU, read from its header); exit 2 if it is rejected."""
    store = open_store()
    try:
        result = load_file(store, file)
        effects = update_people(store, result)
    except HubError as exc:
        raise _fail(exc) from exc
    finally:
        store.dispose()
    if result.outcome == "already_loaded":
        typer.echo(f"{file.name}: already loaded (load {result.load_id}); nothing changed")
        return
    typer.echo(f"{file.name}: {result.file_type} applied as load {result.load_id}")
    for table, count in sorted(result.counts.items()):
        typer.echo(f"  {table}: {count}")
    typer.echo(f"  trailer count: {result.trailer_convention}")
    if result.retired:
        typer.echo(f"  UPRNs retired or replaced: {len(result.retired)}")
        typer.echo(f"  people moved to a successor UPRN: {len(effects.moved)}; "
                   f"flagged for data-quality review: {len(effects.flagged)}")
    for warning in result.warnings:
        typer.echo(f"  warning: {warning}")


@app.command("match")
def match(
    address: Annotated[str, typer.Argument(help="The address as free text.")],
    postcode: Annotated[
        str | None, typer.Option("--postcode", help="Postcode, if held apart.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Find the UPRN for an address, with the confidence and the reason."""
    store = open_store()
    try:
        found = AddressMatcher.from_store(store).match(address, postcode)
    except HubError as exc:
        raise _fail(exc) from exc
    finally:
        store.dispose()
    if as_json:
        typer.echo(json.dumps(found.as_json()))
        return
    typer.echo(f"UPRN:       {found.uprn or '(none)'}")
    typer.echo(f"confidence: {found.confidence:.2f}")
    typer.echo(f"reason:     {found.reason}")
    for line in found.lines:
        typer.echo(f"  {line}")


@app.command("watch")
def watch(
    folder: Annotated[Path, typer.Argument(help="The drop folder the gazetteer feed arrives in.")],
    interval: Annotated[float, typer.Option(help="Seconds between looks.")] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="Look once and stop.")] = False,
    min_age: Annotated[float, typer.Option(help="Leave files younger than this (seconds).")] = 5.0,
) -> None:
    """Load new files from a drop folder in name order, moving each to processed/ or failed/."""
    store = open_store()
    try:
        while True:
            for picked in pick_up(store, folder, min_age):
                typer.echo(f"{picked.file_name}: {picked.outcome} -> {picked.moved_to}")
                if picked.effects is not None and (picked.effects.moved or picked.effects.flagged):
                    typer.echo(f"  people moved to a successor UPRN: {len(picked.effects.moved)}; "
                               f"flagged for data-quality review: {len(picked.effects.flagged)}")
            if once:
                return
            time.sleep(interval)
    except HubError as exc:
        raise _fail(exc) from exc
    finally:
        store.dispose()
