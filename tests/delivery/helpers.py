"""Moved to :mod:`tests.support.delivery` and :mod:`tests.support.waiting` (shared helpers live in
tests/support/); kept for branches that still import them from here."""

from collections.abc import Callable

from tests.support import waiting
from tests.support.delivery import *  # noqa: F403


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    """The old argument order of :func:`tests.support.waiting.wait_for`."""
    waiting.wait_for(check, what, timeout=timeout, every=every)
