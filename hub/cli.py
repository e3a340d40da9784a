"""`carehub`: the command line for operators and for the demo.

Links add their own sub-commands through the ``carehub.commands`` entry-point
group (name -> a Typer app), so this module imports none of them. Every command
reads the store from CAREHUB_DATABASE_URL (or config/hub.toml).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.access.policy import Policy
from hub.access.tokens import DEMO_WARNING, demo_issuer
from hub.audit import export_csv
from hub.config_check import check_config, require_valid
from hub.contract import Adapter
from hub.delivery.cli import deliveries_app
from hub.delivery.config import load_delivery_config, load_schedule_config
from hub.delivery.node import WorkerNode
from hub.errors import ConfigError, HubError
from hub.identity.cli import dedupe_command, identity_app, match_command
from hub.pipeline import BatchResult
from hub.quarantine import QuarantineFilter, list_entries, retry, show_entry
from hub.registry import build_pipeline, enabled_sources, load_adapter, load_object
from hub.settings import Settings, get_settings, reload_settings
from hub.status import DELIVERY_STATUSES, hub_status
from hub.store.db import Store, open_store
from hub.store.migrate import upgrade
from hub.sync import sync_source

app = typer.Typer(help="Care Hub: one shared care record from every system.", no_args_is_help=True)
db_app = typer.Typer(help="The store's schema.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Records that could not be accepted.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(audit_app, name="audit")
app.command("match")(match_command)
app.command("dedupe")(dedupe_command)
app.add_typer(identity_app, name="identity")
app.add_typer(deliveries_app, name="deliveries")
config_app = typer.Typer(help="The configuration: hub.toml and every file it names.", no_args_is_help=True)
app.add_typer(config_app, name="config")
console = Console(stderr=True)


@app.callback()
def startup(ctx: typer.Context) -> None:
    """Care Hub: one shared care record from every system."""
    if ctx.invoked_subcommand != "config":  # every command starts from a configuration checked whole
        require_valid(reload_settings)


@config_app.command("check")
def config_check() -> None:
    """Load hub.toml and every file it names, load what they name by import path and build every source and
    target adapter (no connection made); print the effective settings (secrets masked), or every problem with
    its file and key and exit 1."""
    report = check_config(Settings, built=True)
    if not report.ok:
        for problem in report.problems:
            typer.echo(f"problem: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps({"files": report.files, "settings": report.effective}, indent=2))


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "heads") -> None:
    """Apply every Alembic migration the store has not had yet."""
    store = open_store()
    upgrade(store.engine, revision)
    typer.echo(f"store is at {revision} ({store.engine.dialect.name})")
    store.dispose()


@db_app.command("rebuild-cohort")
def db_rebuild_cohort() -> None:
    """Recompute the transitions cohort's facts (transition_cohort) from the documents the store holds."""
    from hub.store.cohort import rebuild

    store = open_store()
    with store.session() as session:
        people = rebuild(session)
    typer.echo(f"transition_cohort rebuilt: {people} people")
    store.dispose()


def run_sync(store: Store, settings: Settings, sources: list[str]) -> dict[str, BatchResult]:
    """Sync the named sources (all enabled ones when empty) with a progress bar each."""
    names = sources or enabled_sources(settings)
    pipeline = build_pipeline(settings, store)
    results: dict[str, BatchResult] = {}
    for name in names:
        adapter = load_adapter(settings, name)
        batch_size = settings.sources[name].batch_size
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            tasks: dict[str, TaskID] = {}

            def advance(stream: str, n: int, bar: Progress = bar, tasks: dict[str, TaskID] = tasks,
                        source: str = name) -> None:
                if stream not in tasks:
                    tasks[stream] = bar.add_task(f"{source}.{stream}", total=None)
                bar.advance(tasks[stream], n)

            try:
                results[name] = sync_source(store, adapter, pipeline, batch_size=batch_size, progress=advance,
                                            read_ahead=True)
            finally:
                adapter.close()
    return results


@app.command()
def sync(sources: Annotated[list[str] | None, typer.Argument(help="Sources to sync; all enabled if none.")] = None
         ) -> None:
    """Pull every enabled source (or the named ones) into the hub."""
    settings = get_settings()
    store = open_store()
    upgrade(store.engine)
    results = run_sync(store, settings, sources or [])
    for name, r in results.items():
        typer.echo(f"{name}: {r.received} read, {r.accepted} accepted, {r.quarantined} quarantined, "
                   f"{r.unchanged} unchanged, {r.created} created, {r.updated} updated, {r.events} events")
    store.dispose()
    refused = [(name, stream, r) for name, result in results.items()
               for stream, r in result.refused_streams().items()]
    for name, stream, r in refused:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(r.reasons.items(), key=lambda kv: -kv[1]))
        typer.echo(f"error: {name}.{stream} accepted nothing: all {r.quarantined} new records of {r.received} read "
                   f"were quarantined ({reasons}); see `carehub quarantine list --source {name}`", err=True)
    if refused:
        raise typer.Exit(1)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """What the hub holds: per source raw = accepted + quarantined, canonical counts, outbox."""
    store = open_store()
    with store.session() as session:
        data = hub_status(session)
    store.dispose()
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    out = Console()
    table = Table(title="Sources")
    for col in ("source", "raw", "accepted", "quarantined", "open quarantine", "last sync"):
        table.add_column(col)
    for name, s in data["sources"].items():
        last = s.get("last_sync", {})
        table.add_row(name, str(s["raw"]), str(s["accepted"]), str(s["quarantined"]),
                      str(s.get("open_quarantine", 0)), f"{last.get('outcome', '-')} {last.get('finished') or ''}")
    out.print(table)
    canon = Table(title="Canonical records")
    canon.add_column("entity")
    canon.add_column("count", justify="right")
    for etype, n in data["canonical"].items():
        canon.add_row(etype, str(n))
    out.print(canon)
    out.print("Outbox: " + ", ".join(f"{k} {v}" for k, v in data["outbox"].items()))
    out.print("Identity: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in data["identity"].items()))
    targets = Table(title="Deliveries")
    for col in ("target", "circuit", *DELIVERY_STATUSES, "lanes leased", "lanes lost"):
        targets.add_column(col)
    for name, t in data["deliveries"].items():
        targets.add_row(name, t["circuit"], *(str(t[s]) for s in DELIVERY_STATUSES), str(t["lanes_leased"]),
                        str(t["lanes_lost"]))
    out.print(targets)
    jobs = Table(title="Scheduled jobs" + (f" (leader {data['scheduler']['holder']})" if data["scheduler"] else ""))
    for col in ("job", "last outcome", "started", "duration ms", "node", "error"):
        jobs.add_column(col)
    for name, j in data["jobs"].items():
        jobs.add_row(name, j["outcome"], j["started"][:19], str(j["duration_ms"] or ""), j["node"],
                     (j["error"] or "")[:60])
    out.print(jobs)


@quarantine_app.command("list")
def quarantine_list(
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    state: Annotated[str, typer.Option("--status", help="open, resolved, superseded or all.")] = "open",
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List quarantined records with their reasons (newest first)."""
    store = open_store()
    with store.session() as session:
        entries = list_entries(session, QuarantineFilter(source, reason, None if state == "all" else state), limit)
        rows = [{"id": q.id, "source": q.source, "stream": q.stream, "source_id": q.source_id,
                 "reason": q.reason, "message": q.message, "status": q.status, "attempts": q.attempts}
                for q in entries]
    store.dispose()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Quarantine ({len(rows)})")
    for col in ("id", "source", "stream", "source id", "reason", "message", "status"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[k]) for k in ("id", "source", "stream", "source_id", "reason", "message", "status")))
    Console(width=200).print(table)


@quarantine_app.command("show")
def quarantine_show(entry_id: int) -> None:
    """One quarantined record: its reason, its history and the raw record as kept."""
    store = open_store()
    with store.session() as session:
        typer.echo(json.dumps(show_entry(session, entry_id), indent=2, default=str))
    store.dispose()


@quarantine_app.command("retry")
def quarantine_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Entry ids; or use --reason/--source.")] = None,
    reason: Annotated[str | None, typer.Option(help="Retry every open entry with this reason.")] = None,
    source: Annotated[str | None, typer.Option(help="Retry every open entry of this source.")] = None,
) -> None:
    """Re-run quarantined records through the pipeline after a fix (mapping, reference, data)."""
    if not ids and not reason and not source:
        raise typer.BadParameter("name entry ids, --reason or --source")
    settings = get_settings()
    store = open_store()
    adapters: dict[str, Adapter] = {}

    def adapter_for(name: str) -> Adapter:
        if name not in adapters:
            adapters[name] = load_adapter(settings, name)
        return adapters[name]

    result = retry(store, build_pipeline(settings, store), adapter_for, ids=ids or None,
                   flt=QuarantineFilter(source=source, reason=reason))
    typer.echo(f"retried {result.received}: {result.accepted} accepted, {result.quarantined} still quarantined")
    store.dispose()


@app.command()
def token(
    user: Annotated[str, typer.Option(help="Token subject (the user id).")],
    role: Annotated[list[str], typer.Option(help="A role of config/policy.toml; repeat for several roles.")],
    team: Annotated[str | None, typer.Option(help="The user's team code.")] = None,
    ttl: Annotated[int | None, typer.Option(help="Life of the token in seconds.")] = None,
) -> None:
    """Print a bearer token from the local demo issuer, which a hub accepts only with demo sign-in on."""
    settings = get_settings()
    issuer = demo_issuer(settings)
    if issuer is None:
        raise ConfigError("the demo issuer is off: set auth.demo = true (CAREHUB_AUTH__DEMO=true), as "
                          "`carehub demo` does for the server it starts")
    policy = Policy.of(settings)
    for name in role:
        if policy.role(name) is None:
            raise typer.BadParameter(f"unknown role {name!r}", param_hint="--role")
    typer.echo(issuer.issue(user, list(dict.fromkeys(role)), team, ttl=ttl or settings.auth.demo_ttl_seconds))


def _when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO date or date-time", param_hint=name) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    since: Annotated[str | None, typer.Option("--from", help="First moment (ISO date or date-time, UTC).")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Up to, not including (ISO date or date-time).")] = None,
) -> None:
    """Write the audit trail of a period as CSV (ids only: no names, addresses or NHS numbers)."""
    store = open_store()
    count = export_csv(store, out, _when(since, "--from"), _when(until, "--to"))
    store.dispose()
    typer.echo(f"{count} audit events written to {out}")


@app.command()
def worker(
    threads: Annotated[int, typer.Option(help="Delivery loops in this process (PostgreSQL only above 1).")] = 1,
    scheduler: Annotated[bool, typer.Option(help="Take part in scheduler leadership.")] = True,
) -> None:
    """Deliver change events to their targets and, on the leading node, run the scheduled jobs. Stop with SIGTERM."""
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = open_store()
    upgrade(store.engine)
    node = WorkerNode(store, settings, load_delivery_config(settings), load_schedule_config(settings),
                      threads=threads, run_scheduler=scheduler)
    try:
        node.run()
    finally:
        store.dispose()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log one line per request (the audit trail keeps them "
                                                  "anyway).")] = True,
) -> None:
    """Serve the hub's API and pages; several workers run under gunicorn, each on a socket of its own
    (hub.api.server)."""
    if demo_issuer(get_settings()) is not None:  # ConfigError when the demo issuer sits beside a real tenant
        typer.echo(f"warning: {DEMO_WARNING}", err=True)
    if workers > 1:
        from hub.api.server import serve as serve_workers

        serve_workers(host, port, workers, access_log)
    else:
        import uvicorn

        from hub.api.app import serving_app

        uvicorn.run(serving_app(), host=host, port=port, access_log=access_log)


@app.command()
def demo(
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Seed and sync, then stop.")] = False,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Seed the synthetic sources, sync them, run the after-sync steps, print a summary, then serve (with demo
    sign-in on: the demo users' picker and the demo issuer)."""
    os.environ["CAREHUB_AUTH__DEMO"] = "true"
    for source in reload_settings().demo.enable_sources:
        os.environ[f"CAREHUB_SOURCES__{source.upper()}__ENABLED"] = "true"
    settings = reload_settings()
    # Every port the demo will listen on is free before anything starts: not half a demo, talking to a stranger.
    taken = [taken_port(f"simulator {name}", "127.0.0.1", sim_port, settings,
                        f"give it a free port in [demo] simulators (or CAREHUB_DEMO__SIMULATORS__{name.upper()}=PORT)")
             for name, sim_port in settings.demo.simulators.items()]
    if not no_serve:
        taken.append(taken_port("the hub", host, port, settings, "serve it on another: carehub demo --port PORT"))
    if any(taken):
        raise ConfigError("carehub demo cannot start: " + "; ".join(t for t in taken if t))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # A terminated demo (SIGTERM; uvicorn raises it again once it has shut down) unwinds through the finally
    # below, so it stops its simulators rather than leave them holding their ports.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    simulators = start_simulators(settings.demo.simulators)
    try:
        store = open_store()
        upgrade(store.engine)
        for path in settings.demo.seeders:
            typer.echo(load_object(path)(settings))
        run_sync(store, settings, [])
        store.dispose()
        for path in settings.demo.after_sync:
            typer.echo(load_object(path)(settings))
        status(as_json=False)
        if not no_serve:
            typer.echo(f"serving Care Hub on http://{host}:{port}/ (Ctrl-C to stop)")
            serve(host=host, port=port, workers=1)
    finally:
        stop_simulators(simulators)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def taken_port(who: str, host: str, port: int, settings: Settings, move: str) -> str | None:
    """What to do when ``port`` on ``host``, where ``who`` is to listen, is already held by another process (None
    when it is free): stop that process, or ``move`` it, with the settings that name the port in their URLs."""
    with socket.socket() as probe:
        # as the servers do: a connection closed a moment ago (TIME_WAIT) holds no port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ConfigError(f"{who} cannot listen on {host}:{port}: {exc.strerror}") from exc
        else:
            return None
    naming = settings_naming_port(settings, port)
    also = f", and put that port in {', '.join(naming)}" if naming else ""
    return (f"{who} cannot listen on {host}:{port}: another process already holds that port. Stop that process "
            f"(is an earlier carehub demo or carehub simulate still running? ss -ltnp 'sport = :{port}' names it), "
            f"or {move}{also}")


def settings_naming_port(settings: Settings, port: int) -> list[str]:
    """The settings, and the subscriptions file's targets, whose URLs name loopback ``port`` (the sources and
    targets a simulator on that port serves), as dotted keys."""
    subscriptions = load_delivery_config(settings).model_dump(mode="json")
    return [*_keys_naming_port(settings.model_dump(mode="json"), port),
            *(f"{settings.subscriptions_file} {key}" for key in _keys_naming_port(subscriptions, port))]


def _keys_naming_port(value: object, port: int, key: str = "") -> list[str]:
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _keys_naming_port(v, port, f"{key}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [found for v in value for found in _keys_naming_port(v, port, key)]
    if isinstance(value, str) and any(f"{h}:{port}/" in value or value.endswith(f"{h}:{port}")
                                      for h in ("127.0.0.1", "localhost")):
        return [key]
    return []


def start_simulators(wanted: dict[str, int], timeout: float = 60.0) -> list[subprocess.Popen[bytes]]:
    """Start each simulator with ``carehub simulate NAME --port PORT`` and wait until its port answers."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name, sim_port in wanted.items():
            started.append(subprocess.Popen([sys.executable, "-m", "hub", "simulate", name, "--port", str(sim_port)],
                                            stdout=subprocess.DEVNULL))
            deadline = time.monotonic() + timeout
            while True:
                if started[-1].poll() is not None:
                    raise ConfigError(f"simulator {name} stopped at once (is port {sim_port} taken?)")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", sim_port), timeout=1):
                    break
                if time.monotonic() > deadline:
                    raise ConfigError(f"simulator {name} did not answer on port {sim_port} within {timeout:.0f} s")
                time.sleep(0.2)
            typer.echo(f"simulator {name} on 127.0.0.1:{sim_port}")
    except BaseException:
        stop_simulators(started)
        raise
    return started


def stop_simulators(started: list[subprocess.Popen[bytes]]) -> None:
    """Stop the simulators the demo started (each by its own process)."""
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@app.command()
def simulate(
    name: Annotated[str, typer.Argument(help="Which simulator (see the carehub.simulators entry points).")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 0,
) -> None:
    """Run one simulator of the estate in the foreground: the one way every simulator starts."""
    known = {ep.name: ep for ep in entry_points(group="carehub.simulators")}
    if name not in known:
        raise ConfigError(f"no simulator {name!r} (known: {', '.join(sorted(known)) or 'none'})")
    try:
        known[name].load()(host, port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise ConfigError(f"simulator {name} cannot listen on {host}:{port}: another process already holds that "
                          f"port; stop it, or pass another --port") from exc


def _load_link_commands() -> None:
    for ep in entry_points(group="carehub.commands"):
        app.add_typer(ep.load(), name=ep.name)


def main() -> None:
    """Console-script entry: run the app, turning hub errors into one line and exit code 2."""
    _load_link_commands()
    try:
        # Not standalone, click hands back a command's typer.Exit status instead of exiting with it.
        code = app(standalone_mode=False)
    except HubError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)
