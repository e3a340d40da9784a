"""`carehub deliveries ...`: see, retry, replay and cancel deliveries from the command line.

The acting user recorded in each delivery's history is ``cli:<login name>``
(or ``--as NAME``).
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hub.delivery.config import load_delivery_config
from hub.delivery.operations import (
    DeliveryFilter,
    cancel_delivery,
    event_deliveries,
    list_deliveries,
    retry_deliveries,
    retry_delivery,
    show_delivery,
)
from hub.settings import get_settings
from hub.store.db import Store
from hub.store.delivery import DEAD, FAILED, STATUSES

deliveries_app = typer.Typer(help="Deliveries of change events to targets: list, show, retry, cancel.",
                             no_args_is_help=True)

ActorOption = Annotated[str | None, typer.Option("--as", help="Who is acting (recorded in the history).")]


def _store() -> Store:
    settings = get_settings()
    return Store(settings.database_url, echo=settings.sql_echo)


def _actor(name: str | None) -> str:
    return f"cli:{name or getpass.getuser()}"


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO date or date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@deliveries_app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help=f"One of {', '.join(STATUSES)}.")] = None,
    target: Annotated[str | None, typer.Option(help="Only this target.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Only this ordering key (person id).")] = None,
    since: Annotated[str | None, typer.Option(help="Changed at or after (ISO date/time, UTC).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List deliveries, most recently changed first."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"status must be one of {', '.join(STATUSES)}")
    store = _store()
    with store.session() as session:
        rows = list_deliveries(session, DeliveryFilter(status=status, target=target, ordering_key=key,
                                                       since=_when(since)), limit)
    store.dispose()
    if as_json:
        _print(rows)
        return
    table = Table(title=f"Deliveries ({len(rows)})")
    for col in ("id", "target", "event", "status", "attempts", "error class", "last error", "updated"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["target"], r["event_id"][:8], r["status"], str(r["attempts"]),
                      r["error_class"] or "", (r["last_error"] or "")[:60], r["updated_at"][:19])
    Console(width=200).print(table)


@deliveries_app.command("show")
def show_command(delivery_id: int) -> None:
    """One delivery: its event (ids only), every attempt and operator action, its replays."""
    store = _store()
    with store.session() as session:
        _print(show_delivery(session, delivery_id))
    store.dispose()


@deliveries_app.command("event")
def event_command(event_id: str) -> None:
    """Was this event delivered? Per subscribed target: delivered, in flight, pending, or its delivery rows."""
    store = _store()
    with store.session() as session:
        _print(event_deliveries(session, event_id, load_delivery_config(get_settings())))
    store.dispose()


@deliveries_app.command("retry")
def retry_command(
    delivery_id: Annotated[int | None, typer.Argument(help="The delivery; or use --target and --since.")] = None,
    target: Annotated[str | None, typer.Option(help="Retry this target's dead and failed deliveries.")] = None,
    since: Annotated[str | None, typer.Option(help="... that changed at or after this (ISO, UTC).")] = None,
    actor: ActorOption = None,
) -> None:
    """Retry a delivery now, or replay a dead/cancelled one (a new attempt linked to the original)."""
    store = _store()
    if delivery_id is not None:
        with store.session() as session:
            row = retry_delivery(session, delivery_id, _actor(actor))
        typer.echo(f"delivery {row['id']} is {row['status']}"
                   + (f" (replay of {row['replay_of']})" if row["replay_of"] else ""))
    elif target and since:
        when = _when(since)
        assert when is not None
        with store.session() as session:
            ids = retry_deliveries(session, _actor(actor), target=target, since=when, statuses=(DEAD, FAILED))
        typer.echo(f"{len(ids)} deliveries of {target} will go again")
    else:
        raise typer.BadParameter("name a delivery id, or both --target and --since")
    store.dispose()


@deliveries_app.command("cancel")
def cancel_command(
    delivery_id: int,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
    actor: ActorOption = None,
) -> None:
    """Cancel a delivery: no further attempts; its person's later events are no longer held back by it."""
    store = _store()
    with store.session() as session:
        row = cancel_delivery(session, delivery_id, _actor(actor), reason)
    typer.echo(f"delivery {row['id']} is {row['status']}")
    store.dispose()
