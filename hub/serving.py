"""Serving the hub's API in several worker processes, each listening on a socket of its own.

``carehub serve --workers N`` runs N uvicorn servers. uvicorn's own supervisor
binds one listening socket and hands it to every worker; a worker whose event
loop wakes first takes every connection waiting in the queue, so a burst of
new connections lands almost all on one worker (50 connections of a
saturation run split 44/6). The crowded worker is held to one core while the
other idles, waiting on its audit commits.

Here each worker binds its own socket to the same address with
``SO_REUSEPORT``, and the kernel spreads new connections across the sockets by
a hash of their addresses (Linux 3.9 and later; nginx ``reuseport`` and
gunicorn ``--reuse-port`` do the same). The supervisor starts the workers,
replaces one that dies, and stops them all on SIGTERM or SIGINT (each finishes
its requests in flight). A worker that cannot start (the app, or the bind,
fails) stops the supervisor rather than being restarted forever.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import threading
from multiprocessing.context import SpawnProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from hub.api.access_log import install as install_path_only
from hub.runtime import FRESH

log = logging.getLogger("carehub.serving")



def reuse_port_supported() -> bool:
    """True on Linux, whose kernel spreads new connections over the sockets sharing an address (the BSDs'
    ``SO_REUSEPORT`` lets sockets share it but does not spread connections)."""
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT``, so other workers can bind the same address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _worker(config: uvicorn.Config, sock: socket.socket) -> None:
    """A worker process: one uvicorn server on its own listening socket."""
    config.configure_logging()
    install_path_only()
    # Ctrl-C reaches the whole process group: the supervisor is stopping this worker anyway.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


class Workers:
    """Keeps ``count`` worker processes serving ``config``, each on its own ``SO_REUSEPORT`` socket."""

    def __init__(self, config: uvicorn.Config, count: int) -> None:
        self.config = config
        self.count = count
        self.processes: list[SpawnProcess] = []
        self.stopping = threading.Event()

    def spawn(self) -> SpawnProcess:
        """Start one worker on a new socket.

        The worker inherits the socket; the supervisor closes its own copy at
        once, so when the worker exits the socket closes with it and the kernel
        stops sending it connections.
        """
        sock = listening_socket(self.config.host, self.config.port)
        process = FRESH.Process(target=_worker, args=(self.config, sock), name="carehub-api-worker")
        try:
            process.start()
        finally:
            sock.close()
        return process

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status (non-zero when a worker could not start)."""

        def stop(signum: int, frame: FrameType | None) -> None:
            self.stopping.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)
        status = 0
        try:
            for _ in range(self.count):
                self.processes.append(self.spawn())
        except OSError as exc:
            log.error("cannot listen on %s:%s: %s", self.config.host, self.config.port, exc)
            self.stopping.set()
            status = STARTUP_FAILURE
        log.info("serving on http://%s:%s with %d workers, each on its own socket",
                 self.config.host, self.config.port, len(self.processes))
        while not self.stopping.wait(0.5):
            status = self.replace_exited()
        self.stop_all()
        return status

    def replace_exited(self) -> int:
        """Start a new worker in place of each that has exited; STARTUP_FAILURE (and stop) if one never started."""
        for index, process in enumerate(self.processes):
            if process.is_alive() or self.stopping.is_set():
                continue
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker %s could not start; stopping", process.pid)
                self.stopping.set()
                return STARTUP_FAILURE
            log.warning("worker %s exited with status %s; starting another", process.pid, process.exitcode)
            self.processes[index] = self.spawn()
        return 0

    def stop_all(self) -> None:
        """Ask every worker to finish its requests and exit; kill those still running after the grace period."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        grace = self.config.timeout_graceful_shutdown or 30
        for process in self.processes:
            process.join(grace)
            if process.is_alive():
                log.warning("worker %s did not stop within %s s; killing it", process.pid, grace)
                process.kill()
                process.join()


def serve(app: str, *, host: str, port: int, workers: int, access_log: bool = True, factory: bool = False,
          app_dir: str | None = None) -> int:
    """Serve the ASGI app named ``app`` (``module:attribute``); with several workers, each on its own socket.

    Returns the exit status. Where the platform cannot share an address
    between sockets, several workers share uvicorn's one socket instead.
    """
    if app_dir is not None:
        sys.path.insert(0, app_dir)
    if workers <= 1 or not reuse_port_supported():
        uvicorn.run(app, factory=factory, host=host, port=port, workers=workers, access_log=access_log)
        return 0
    config = uvicorn.Config(app, factory=factory, host=host, port=port, workers=workers, access_log=access_log)
    config.configure_logging()
    install_path_only()
    return Workers(config, workers).run()


if __name__ == "__main__":  # python -m hub.serving APP HOST PORT WORKERS [APP_DIR]: what the benchmarks serve with
    logging.basicConfig(level=logging.WARNING)
    name, bind, number, workers_arg = sys.argv[1:5]
    raise SystemExit(serve(name, host=bind, port=int(number), workers=int(workers_arg), access_log=False,
                           app_dir=sys.argv[5] if len(sys.argv) > 5 else None))
