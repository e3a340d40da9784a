"""`carehub mllp`: listen for HL7 v2 ADT messages over MLLP and apply them to the hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Annotated

import typer

from health_link.adt import AdtFeed
from health_link.mllp import DEFAULT_PORT, MllpListener, tune_collector
from hub.cli import open_store
from hub.registry import build_pipeline
from hub.settings import get_settings
from hub.store.migrate import upgrade

mllp_app = typer.Typer(help="HL7 v2 ADT over MLLP: listen and apply (ACK after commit).",
                       invoke_without_command=True)


@mllp_app.callback()
def mllp(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    max_batch: Annotated[int, typer.Option(help="Most messages committed together.")] = 500,
    readers: Annotated[int, typer.Option(help="Processes parsing messages beside the committing one (0: none).")
                       ] = 1,
    enhanced_acks: Annotated[bool, typer.Option(
        help="Answer senders that value MSH-15/16 with enhanced-mode commit ACKs (CA, CE, CR, as MSH-15 asks); "
             "otherwise every message gets an original-mode ACK (AA, AE, AR).")] = False,
) -> None:
    """Listen for ADT messages; each is acknowledged once committed. Stop with Ctrl-C, SIGINT or SIGTERM (also
    in the background): the listener finishes what it has read, answers it, and stops its reader processes."""
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = open_store()
    upgrade(store.engine)
    listener = MllpListener(store, AdtFeed(build_pipeline(settings, store), enhanced_acks=enhanced_acks),
                            max_batch=max_batch, readers=readers)

    async def serve() -> None:
        tune_collector()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # a shell starts background jobs with SIGINT ignored, and SIGTERM's default would leave the reader
        # processes behind: both now end the listener the same orderly way
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        bound = await listener.start(host, port)
        typer.echo(f"listening for MLLP on {bound[0]}:{bound[1]} (Ctrl-C to stop)")
        serving = asyncio.create_task(listener.serve_forever())
        try:
            await stop.wait()
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            await listener.close()

    try:
        asyncio.run(serve())
        typer.echo(f"stopped after {listener.stats.messages} messages: {listener.stats.answers}")
    finally:
        store.dispose()
