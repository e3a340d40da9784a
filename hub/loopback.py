"""A simulator's HTTP server on loopback: the one way every simulator of the estate binds, serves and stops.

Each simulator (``carehub simulate NAME``, the ``carehub.simulators`` entry points) speaks its own protocol
from its own link's folder - the case systems' JSON API and the counting target in ``adapters/simulators/``,
SOAP in ``finance_link/``, CMIS in ``edrms/``, FHIR in ``health_link/`` - through a handler of its own
(a :class:`SimulatorHandler`). What they share is here. A :class:`LoopbackServer` binds when it is made (port
0: a free one, known at once), serves on a background thread (:meth:`~LoopbackServer.start`, or as a context
manager) or in the foreground until interrupted (:meth:`~LoopbackServer.serve_forever`, as ``carehub
simulate`` runs it), and :meth:`~LoopbackServer.stop` releases the port; started again, it listens on the same
port. A handler reaches its simulator as ``self.server.simulator``.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, Self, TypeVar

S = TypeVar("S", bound="LoopbackServer")

POLL_SECONDS = 0.05
"""How often a serving loop looks for a stop (so a simulator stops within this, not the library's half second)."""


class SimulatorServer(ThreadingHTTPServer, Generic[S]):
    """The HTTP server of one simulator: a daemon thread per connection, the port reusable at once after a stop,
    and the simulator its handlers answer for."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], simulator: S) -> None:
        self.simulator = simulator
        super().__init__(address, handler)


class SimulatorHandler(BaseHTTPRequestHandler, Generic[S]):
    """What every simulator's request handler shares: HTTP/1.1 (kept-alive connections, as the hub's clients
    use), no request log (the simulator's state is its record), and ``server`` typed with its simulator."""

    server: SimulatorServer[S]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        """Quiet: synthetic data only, but a simulator writes no log."""


class LoopbackServer:
    """A simulator served over HTTP on loopback (see the module); subclasses add their protocol's state."""

    name: ClassVar[str] = "loopback"

    def __init__(self, handler: type[SimulatorHandler[Any]], host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.server: SimulatorServer[Any] | None = SimulatorServer((host, port), self.handler, self)
        self.host = str(self.server.server_address[0])
        self.port = int(self.server.server_address[1])
        self.thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        """``http://host:port``: what every URL of the simulator starts with."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Serve on a background thread (listening again on the same port after a :meth:`stop`)."""
        if self.thread is not None and self.thread.is_alive():
            return self
        server = self._listening()
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                                       name=f"{self.name}-simulator", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (nothing when it is not listening)."""
        server, thread, self.server, self.thread = self.server, self.thread, None, None
        if server is None:
            return
        if thread is not None and thread.is_alive():
            server.shutdown()
        server.server_close()

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C), then release the port: ``carehub simulate``."""
        server = self._listening()
        try:
            server.serve_forever(poll_interval=POLL_SECONDS)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listening(self) -> SimulatorServer[Any]:
        if self.server is None:
            self.server = SimulatorServer((self.host, self.port), self.handler, self)
        return self.server
