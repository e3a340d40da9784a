"""Running the real `carehub` command in a subprocess against a store and a config of a test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from hub.settings import config_file
from tests.support.ports import free_port

CARHUB = [sys.executable, "-m", "hub"]


def hub_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a carehub subprocess: its own store and data folder; `carehub demo` starts the shipped
    config's simulators on free ports, never the fixed ones another run on the machine may hold, and syncs none
    of their systems (a test that wants them says so: ``CAREHUB_DEMO__ENABLE_SOURCES``).

    The environment cannot take the simulators away: an empty table there leaves the config file's in place
    (the settings merge tables key by key), so each shipped simulator gets a port of its own instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    shipped = tomllib.loads(config_file().read_text()).get("demo", {}).get("simulators", {})
    env.update({"CAREHUB_DATABASE_URL": database_url, "CAREHUB_DATA_DIR": str(data_dir),
                "CAREHUB_DEMO__SIMULATORS": json.dumps({name: free_port() for name in shipped}),
                "CAREHUB_DEMO__ENABLE_SOURCES": "[]",
                # the demo's EDRMS simulator on any free port, never a fixed one
                "CAREHUB_EDRMS__SERVICE_URL": "http://127.0.0.1:0/alfresco/api/-default-/public/cmis/versions/1.1/browser"})
    env.update(extra)
    return env


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
