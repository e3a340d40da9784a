"""`carehub serve --workers N`: each worker on its own listening socket, a dead worker replaced, SIGTERM stops all.

The sockets are read from Linux's /proc (the hub's servers run on Linux), as an operator would with ``ss -ltnp``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.cli import CARHUB, carehub, hub_env
from tests.support.ports import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # one of the suite's longest (make test runs it)

APP = """
import os
from fastapi import FastAPI

app = FastAPI()
@app.get("/pid")
def pid() -> int:
    return os.getpid()
"""


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
        if not entry.isdigit():
            continue
        try:
            links = {os.readlink(f"/proc/{entry}/fd/{fd}") for fd in os.listdir(f"/proc/{entry}/fd")}
        except OSError:
            continue
        mine = {link[8:-1] for link in links if link.startswith("socket:[")} & inodes
        if mine:
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
    """The body of one HTTP/1.1 answer with a Content-Length."""
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


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A small app served by hub.serving with two workers."""
    (tmp_path / "pid_app.py").write_text(APP)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "hub.serving", "pid_app:app", "127.0.0.1", str(port), "2",
                               str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(listening_workers(port)) == 2, "two listening workers")
        yield server, port
    finally:
        workers = children(server.pid)  # before the supervisor goes: its workers are then nobody's children
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


def test_each_worker_listens_on_its_own_socket_and_takes_connections(
        served: tuple[subprocess.Popen[bytes], int]) -> None:
    server, port = served
    workers = listening_workers(port)
    assert set(workers) <= children(server.pid)  # the workers listen; the supervisor holds no socket
    assert len(set().union(*workers.values())) == 2  # two sockets, not one shared
    # 40 connections at once: the kernel spreads them over both sockets (all on one: a chance of 2 ** -39).
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    try:
        answered_by = set()
        for conn in conns:
            conn.sendall(b"GET /pid HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for conn in conns:
            answered_by.add(int(read_body(conn)))
        assert answered_by == set(workers)
    finally:
        for conn in conns:
            conn.close()


def test_a_dead_worker_is_replaced_and_sigterm_stops_every_worker(
        served: tuple[subprocess.Popen[bytes], int]) -> None:
    server, port = served
    first = set(listening_workers(port))
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(listening_workers(port)) == 2 and victim not in listening_workers(port),
             "a new worker in place of the killed one")
    for _ in range(10):  # every connection is answered: none lands on the dead worker's socket
        assert requests.get(f"http://127.0.0.1:{port}/pid", timeout=5).json() in listening_workers(port)
    workers = set(listening_workers(port))
    server.send_signal(signal.SIGTERM)
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


def test_carehub_serve_with_two_workers_answers_on_both(tmp_path: Path) -> None:
    env = hub_env(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "var")
    carehub("db", "upgrade", env=env)
    port = free_port()
    server = subprocess.Popen([*CARHUB, "serve", "--port", str(port), "--workers", "2"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(listening_workers(port)) == 2, "two listening hub workers", timeout=90)
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["status"] == "ok"
    finally:
        server.terminate()
        assert server.wait(timeout=40) == 0
