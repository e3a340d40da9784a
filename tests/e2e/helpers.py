"""Moved to :mod:`tests.support.cli` (shared helpers live in tests/support/); kept for branches that still
import it from here."""

from tests.support.cli import CARHUB, carehub, free_port, hub_env, status

__all__ = ["CARHUB", "carehub", "free_port", "hub_env", "status"]
