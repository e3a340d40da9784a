"""`carehub demo` and `carehub simulate` when another process already holds a port they listen on: one plain line
naming the simulator, the port and what to do, exit 2, and nothing seeded, synced or started (not half a demo)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.cli import settings_naming_port, taken_port
from hub.settings import Settings
from tests.support.cli import carehub, free_port, hub_env


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another process (this one) listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_demo_stops_before_anything_when_a_simulators_port_is_taken(database_url: str, tmp_path: Path,
                                                                    held_port: int) -> None:
    data = tmp_path / "var"
    env = hub_env(database_url, data, CAREHUB_DEMO__SIMULATORS__CHILDREN=str(held_port),
                  CAREHUB_SOURCES__CHILDRENS_CASE__OPTIONS__BASE_URL=f"http://127.0.0.1:{held_port}/api/v1")
    out = carehub("demo", "--no-serve", env=env, check=False)
    assert out.returncode == 2, out
    assert out.stdout == "" and "Traceback" not in out.stderr
    [line] = out.stderr.splitlines()
    assert f"simulator children cannot listen on 127.0.0.1:{held_port}: another process already holds that port" \
        in line
    assert "Stop that process" in line and f"ss -ltnp 'sport = :{held_port}'" in line
    assert "give it a free port in [demo] simulators (or CAREHUB_DEMO__SIMULATORS__CHILDREN=PORT)" in line
    assert line.endswith(", and put that port in sources.childrens_case.options.base_url")
    assert "simulator adults" not in line  # its port (a free one here) is not taken
    assert not data.exists()  # nothing seeded


def test_demo_checks_its_own_port_before_seeding(database_url: str, tmp_path: Path, held_port: int) -> None:
    env = hub_env(database_url, tmp_path / "var")
    out = carehub("demo", "--port", str(held_port), env=env, check=False)
    assert out.returncode == 2 and out.stdout == "", out
    assert f"the hub cannot listen on 127.0.0.1:{held_port}" in out.stderr
    assert "carehub demo --port PORT" in out.stderr and "Traceback" not in out.stderr


def test_simulate_says_which_port_is_taken(database_url: str, tmp_path: Path, held_port: int) -> None:
    out = carehub("simulate", "adults", "--port", str(held_port), env=hub_env(database_url, tmp_path / "var"),
                  check=False, timeout=60)
    assert out.returncode == 2, out
    assert out.stderr.strip() == (f"error: CAREHUB-E100: simulator adults cannot listen on 127.0.0.1:{held_port}: "
                                  "another process already holds that port; stop it, or pass another --port")


def test_what_names_a_simulators_port() -> None:
    settings = Settings()
    assert settings_naming_port(settings, 8101) == ["sources.childrens_case.options.base_url",
                                                    "sources.childrens_case.options.token_url"]
    assert settings_naming_port(settings, 8102) == [
        "sources.adults_case.options.base_url", "sources.adults_case.options.token_url",
        "transitions.adults_system.base_url", "transitions.adults_system.token_url",
        "subscriptions.toml targets.adults_case.options.base_url",
        "subscriptions.toml targets.adults_case.options.token_url"]
    assert settings_naming_port(settings, 81) == []
    assert taken_port("simulator adults", "127.0.0.1", free_port(), settings, "move it") is None
