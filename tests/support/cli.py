"""Running the real `carehub` command in a subprocess against a store and a config of a test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

CARHUB = [sys.executable, "-m", "hub"]


def hub_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a carehub subprocess: its own store and data folder; `carehub demo` starts no simulator on
    the shipped fixed ports (a test that wants them names free ports: ``CAREHUB_DEMO__SIMULATORS``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    env.update({"CAREHUB_DATABASE_URL": database_url, "CAREHUB_DATA_DIR": str(data_dir),
                "CAREHUB_DEMO__SIMULATORS": "{}", "CAREHUB_DEMO__ENABLE_SOURCES": "[]",
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
