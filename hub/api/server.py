"""``carehub serve --workers N``: the app in N uvicorn workers under gunicorn, each worker on a socket of its own.

gunicorn's arbiter forks the workers (each builds the app with
:func:`hub.api.app.serving_app`), starts another in place of one that dies, and
stops them all on SIGTERM or SIGINT, each finishing its requests in flight (up
to 30 s). A worker that cannot build the app stops the server with status 3.

With ``reuse_port`` each worker binds its own ``SO_REUSEPORT`` socket after the
fork (gunicorn PR 2938) and the kernel spreads new connections across the
workers by a hash of their addresses. With one listening socket handed to every
worker (uvicorn's own ``--workers``, or gunicorn without ``--reuse-port``) the
worker whose loop wakes first takes every connection waiting, and a burst of
connections lands nearly all on one worker (docs/shared-record.md).

A new worker listens as soon as it is forked, before it has built the app, so
the connections the kernel gives it meanwhile wait for that build; the modules
are imported once, in the arbiter, so only the build itself is left.

The arbiter listens on nothing, so it holds the address bound, not listening
(the kernel sends it no connections), from start to stop: a port another
program holds stops the server at once, instead of every worker failing to
bind and being started again.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from hub.api.app import serving_app

STARTUP_FAILURE = Arbiter.WORKER_BOOT_ERROR
"""The exit status when the server cannot start (the address is taken, or a worker cannot build the app)."""


def reserve(host: str, port: int) -> socket.socket:
    """``host:port`` bound with ``SO_REUSEPORT`` and not listening: the workers can bind it too, nobody else."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class HubServer(BaseApplication):
    """An ASGI app as a gunicorn application, its settings given here (never read from a command line or
    ``GUNICORN_CMD_ARGS``)."""

    def __init__(self, host: str, port: int, workers: int, access_log: bool, app: Callable[[], Any]) -> None:
        # Only Linux spreads connections over the sockets sharing an address (the BSDs let them share it).
        self.balanced = hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")
        self.factory = app
        self.options: dict[str, Any] = {
            "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
            "workers": workers,
            "worker_class": "uvicorn_worker.UvicornWorker",
            "reuse_port": self.balanced,
            "keepalive": 5,  # uvicorn's default, as one `carehub serve` process keeps idle connections
            "graceful_timeout": 30,
            "accesslog": "-" if access_log else None,  # uvicorn's lines, paths only (hub.api.access_log)
            "control_socket_disable": True,  # one per user under $HOME otherwise; the hub is run by signals
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """The app, built in each worker after the fork (its threads and store connections are the worker's)."""
        return self.factory()


def serve(host: str, port: int, workers: int, access_log: bool = True,
          app: Callable[[], Any] = serving_app) -> None:
    """Serve ``app()`` (the hub's) in ``workers`` processes until SIGTERM or SIGINT, then exit (SystemExit) with
    gunicorn's status: 0, or :data:`STARTUP_FAILURE`."""
    server = HubServer(host, port, workers, access_log, app)
    try:
        reserved = reserve(host, port) if server.balanced else None
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        raise SystemExit(STARTUP_FAILURE) from exc
    try:
        server.run()
    finally:
        if reserved is not None:
            reserved.close()
