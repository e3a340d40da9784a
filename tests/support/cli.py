"""Running the real `carehub` command in a subprocess against a store and a config of a test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from hub.settings import config_dir, config_file
from tests.support.ports import free_port

CARHUB = [sys.executable, "-m", "hub"]


def hub_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a carehub subprocess: its own store and data folder, and the shipped config's simulators
    on free ports of its own (:func:`simulators_on_free_ports`); `carehub demo` syncs none of their systems unless
    the test says so (``CAREHUB_DEMO__ENABLE_SOURCES``). ``extra`` variables win."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    env.update({"CAREHUB_DATABASE_URL": database_url, "CAREHUB_DATA_DIR": str(data_dir),
                "CAREHUB_DEMO__ENABLE_SOURCES": "[]",
                # the demo's EDRMS simulator on any free port, never a fixed one
                "CAREHUB_EDRMS__SERVICE_URL": "http://127.0.0.1:0/alfresco/api/-default-/public/cmis/versions/1.1/browser"})
    env.update(simulators_on_free_ports(data_dir.parent))
    env.update(extra)
    return env


def simulators_on_free_ports(folder: Path) -> dict[str, str]:
    """Variables that move each simulator `carehub demo` starts (``demo.simulators``) from its fixed port, which
    another run on the machine may hold, to a free one, and everything the config points at it there: the
    settings' URLs by variable, the subscriptions' targets by a copy of the subscriptions file in ``folder``
    (beside the data folder, not in it: a test may check that a command left the data folder unmade).

    The environment cannot simply take the simulators away: an empty table there leaves the config file's in
    place (the settings merge tables key by key)."""
    config = tomllib.loads(config_file().read_text())
    simulators = config.get("demo", {}).get("simulators", {})
    ports = {name: free_port() for name in simulators}
    moved = {f"127.0.0.1:{simulators[name]}": f"127.0.0.1:{port}" for name, port in ports.items()}

    def relocated(text: str) -> str:
        for fixed, free in moved.items():
            text = text.replace(fixed, free)
        return text

    # one variable per simulator (as a test naming its own ports does): the settings merge them key by key
    env = {f"CAREHUB_DEMO__SIMULATORS__{name.upper()}": str(port) for name, port in ports.items()}

    def walk(table: dict[str, Any], path: list[str]) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                walk(value, [*path, key])
            elif isinstance(value, str) and relocated(value) != value:
                env["CAREHUB_" + "__".join([*path, key]).upper()] = relocated(value)

    walk({k: v for k, v in config.items() if k != "demo"}, [])
    subscriptions = config_dir() / config.get("subscriptions_file", "subscriptions.toml")
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "hub-env-subscriptions.toml"
    copy.write_text(relocated(subscriptions.read_text()))
    env["CAREHUB_SUBSCRIPTIONS_FILE"] = str(copy)
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
