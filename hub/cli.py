"""`carehub`: the command line for operators and for the demo.

Links add their own sub-commands through the ``carehub.commands`` entry-point
group (name -> a Typer app), so this module imports none of them.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

from hub.errors import HubError
from hub.identity.cli import dedupe_command, identity_app, match_command
from hub.settings import get_settings
from hub.store.db import Store
from hub.store.migrate import upgrade

app = typer.Typer(help="Care Hub: one shared care record from every system.", no_args_is_help=True)
db_app = typer.Typer(help="The store's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command("match")(match_command)
app.command("dedupe")(dedupe_command)
app.add_typer(identity_app, name="identity")


def open_store() -> Store:
    """The store named by CAREHUB_DATABASE_URL (or config/hub.toml)."""
    settings = get_settings()
    return Store(settings.database_url, echo=settings.sql_echo)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("heads", help="Target revision.")) -> None:
    """Apply every Alembic migration the store has not had yet."""
    store = open_store()
    upgrade(store.engine, revision)
    typer.echo(f"store is at {revision} ({store.engine.dialect.name})")


def _load_link_commands() -> None:
    for ep in entry_points(group="carehub.commands"):
        app.add_typer(ep.load(), name=ep.name)


def main() -> None:
    """Console-script entry: run the app, turning hub errors into one line and exit code 2."""
    _load_link_commands()
    try:
        app(standalone_mode=False)
    except HubError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:  # click's own usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
