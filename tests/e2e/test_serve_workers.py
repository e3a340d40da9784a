"""`carehub serve --workers N` (gunicorn with uvicorn workers, hub.api.server): each worker on its own listening
socket and the connections spread over them, a dead worker replaced, SIGTERM or SIGINT stops all, and a server that
cannot start stops with status 3.

The sockets are read from Linux's /proc (the hub's servers run on Linux), as an operator would with ``ss -tnp``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.cli import CARHUB, carehub, hub_env
from tests.support.ports import free_port
from tests.support.processes import socket_inodes
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # one of the suite's longest (make test runs it)


def sockets_of(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on local ``port`` in ``state`` (``0A`` listening, ``01`` established)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.add(fields[9])
    return found


def holders(inodes: set[str]) -> dict[int, set[str]]:
    """Which process holds which of ``inodes``."""
    held: dict[int, set[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (mine := socket_inodes(int(entry)) & inodes):
            held[int(entry)] = mine
    return held


def children(pid: int) -> set[int]:
    """The live child processes of ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry))
    return found


def read_body(conn: socket.socket) -> bytes:
    """The body of one HTTP/1.1 answer with a Content-Length (the headers' other fields are not read)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += conn.recv(4096)
    return body


def listening_workers(port: int) -> dict[int, set[str]]:
    return holders(sockets_of(port, "0A"))


def stop(server: subprocess.Popen[bytes]) -> None:
    """End ``server`` and every worker it started, whatever state they are in."""
    workers = children(server.pid)  # before the arbiter goes: its workers are then nobody's children
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    for pid in workers:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`carehub serve --workers 2` on a store of its own."""
    env = hub_env(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "var")
    carehub("db", "upgrade", env=env)
    port = free_port()
    server = subprocess.Popen([*CARHUB, "serve", "--port", str(port), "--workers", "2", "--no-access-log"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(listening_workers(port)) == 2, "two listening hub workers", timeout=90)
        yield server, port
    finally:
        stop(server)


def test_each_worker_listens_on_its_own_socket_and_takes_connections(
        served: tuple[subprocess.Popen[bytes], int]) -> None:
    server, port = served
    workers = listening_workers(port)
    assert set(workers) <= children(server.pid)  # the workers listen; the arbiter holds no listening socket
    assert len(set().union(*workers.values())) == 2  # two sockets, not one shared
    # 40 connections at once: the kernel spreads them over both sockets (all on one: a chance of 2 ** -39).
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    try:
        for conn in conns:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for conn in conns:
            assert json.loads(read_body(conn))["status"] == "ok"
        # The server end of each connection: held by the worker that accepted it.
        assert set(holders(sockets_of(port, "01"))) == set(workers)
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_dead_worker_is_replaced_and_a_signal_stops_every_worker(
        served: tuple[subprocess.Popen[bytes], int], signum: int) -> None:
    server, port = served
    first = set(listening_workers(port))
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(listening_workers(port)) == 2 and victim not in listening_workers(port),
             "a new worker in place of the killed one", timeout=90)
    # Every connection is answered, none lost on the dead worker's socket (the new worker listens before it has
    # built the app: a connection it takes waits for that).
    for _ in range(10):
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=30).json()["status"] == "ok"
    workers = set(listening_workers(port))
    server.send_signal(signum)
    assert server.wait(timeout=40) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # stopped, and reaped
    assert not sockets_of(port, "0A")


def test_serve_stops_with_an_error_when_its_port_is_taken(tmp_path: Path) -> None:
    env = hub_env(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "var")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound without SO_REUSEPORT: no worker may share it
        taken.listen()
        port = taken.getsockname()[1]
        proc = carehub("serve", "--port", str(port), "--workers", "2", env=env, check=False, timeout=60)
    assert proc.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_a_worker_that_cannot_build_the_app_stops_the_server(tmp_path: Path) -> None:
    # The settings are valid (the arbiter checks them before it starts) but building the app fails in each worker:
    # the pipeline's enricher factory raises when called with the store (json.loads(store): TypeError).
    env = hub_env(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "var", CAREHUB_PIPELINE__ENRICHERS='["json:loads"]')
    port = free_port()
    server = subprocess.Popen([*CARHUB, "serve", "--port", str(port), "--workers", "2"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = server.communicate(timeout=90)
        assert server.returncode == 3, err.decode(errors="replace")[-2000:]
        assert b"Worker failed to boot" in err  # the arbiter stopped: no worker was started again and again
        assert not sockets_of(port, "0A")
    finally:
        stop(server)
