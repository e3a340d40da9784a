"""Waiting for something a process or a thread does: one ``wait_for`` for the whole suite, and a server a test
started answering over HTTP."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests


def wait_for(check: Callable[[], bool], what: str, *, timeout: float = 60.0, every: float = 0.1) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds, naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def answers(url: str) -> bool:
    """Whether an HTTP server answers ``url`` (with any status)."""
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return False
    return True


def wait_until_served(url: str, process: subprocess.Popen[Any], what: str, *, timeout: float = 60.0,
                      log: Path | None = None) -> None:
    """Wait until the server ``process`` runs answers ``url``; fail, with the end of its ``log``, if it exits
    first or does not answer within ``timeout`` seconds."""
    tail = (lambda: f":\n{log.read_text()[-3000:]}") if log is not None else (lambda: "")
    try:
        wait_for(lambda: process.poll() is not None or answers(url), what, timeout=timeout, every=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}{tail()}") from None
    if process.poll() is not None:
        raise AssertionError(f"{what}: the process exited ({process.returncode}) before it answered{tail()}")
