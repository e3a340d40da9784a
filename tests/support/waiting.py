"""Waiting for something a process or a thread does: one ``wait_for`` for the whole suite."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(check: Callable[[], bool], what: str, *, timeout: float = 60.0, every: float = 0.1) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds, naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)
