"""Running the real `carehub` command in a subprocess against a store and a config of a test's own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

CARHUB = [sys.executable, "-m", "hub"]


def hub_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a carehub subprocess: its own store and data folder; `carehub demo` starts its simulators on
    free ports, never the shipped fixed ones (a test that syncs them names its ports and the sources' URLs:
    ``CAREHUB_DEMO__SIMULATORS__CHILDREN``...). The environment's dict is merged into the file's, key by key, so
    an empty one would leave the shipped ports: each simulator is given a port of its own instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    env.update({f"CAREHUB_DEMO__SIMULATORS__{name.upper()}": str(free_port()) for name in shipped_simulators()})
    env.update({"CAREHUB_DATABASE_URL": database_url, "CAREHUB_DATA_DIR": str(data_dir),
                "CAREHUB_DEMO__ENABLE_SOURCES": "[]",
                # the demo's EDRMS simulator on any free port, never a fixed one
                "CAREHUB_EDRMS__SERVICE_URL": "http://127.0.0.1:0/alfresco/api/-default-/public/cmis/versions/1.1/browser"})
    env.update(extra)
    return env


def shipped_simulators() -> list[str]:
    """The simulators the shipped config/hub.toml has `carehub demo` start."""
    shipped = tomllib.loads((Path(__file__).resolve().parents[2] / "config" / "hub.toml").read_text(encoding="utf-8"))
    return list(shipped.get("demo", {}).get("simulators", {}))


def carehub(
    *args: str, env: dict[str, str], check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `carehub ARGS` and return the finished process."""
    proc = subprocess.run([*CARHUB, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"carehub {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def status(env: dict[str, str]) -> dict[str, Any]:
    """`carehub status --json`, parsed."""
    return json.loads(carehub("status", "--json", env=env).stdout)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
