"""Helpers shared by the suite's test packages (import them from here, never from another test module)."""
