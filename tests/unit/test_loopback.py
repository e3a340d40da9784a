"""The simulators' one loopback server (hub/loopback.py): a free port known when made, served on a thread or as a
context manager, stopped and started again on the same port, stopped without ever starting, and the simulator
reached from its handler."""

from __future__ import annotations

import socket

import pytest
import requests

from hub.loopback import LoopbackServer, SimulatorHandler


class Echo(LoopbackServer):
    """A simulator of nothing: answers every GET with its greeting."""

    name = "echo"

    def __init__(self, greeting: str, port: int = 0) -> None:
        self.greeting = greeting
        super().__init__(_EchoHandler, port=port)


class _EchoHandler(SimulatorHandler[Echo]):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = self.server.simulator.greeting.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_simulator_serves_stops_and_listens_again_on_its_port() -> None:
    echo = Echo("hello")
    port = echo.port
    assert port > 0 and echo.origin == f"http://127.0.0.1:{port}"
    with echo:
        assert requests.get(echo.origin, timeout=5).text == "hello"
        assert echo.start() is echo  # started already: the same server, no second loop
    assert refused(port)
    echo.start()
    try:
        assert echo.port == port and requests.get(f"{echo.origin}/again", timeout=5).text == "hello"
    finally:
        echo.stop()
    echo.stop()  # stopped already: nothing to do
    assert refused(port)


def test_a_simulator_made_but_never_started_releases_its_port() -> None:
    echo = Echo("unused")
    echo.stop()
    Echo("next", port=echo.port).stop()  # the port is free again at once


def test_a_taken_port_is_refused_when_made() -> None:
    with Echo("first") as first, pytest.raises(OSError):
        Echo("second", port=first.port)
