"""The runtime seam: only ``hub/runtime.py`` tunes the garbage collector or picks how a child process starts.

The hub's processes (a sync and its reader, the MLLP listener and its readers, the API's
workers) each settle their collector and start their children through ``hub.runtime``; a
second place that does it would make their settings drift apart again. This test reads
the source of every package of the hub and its links and fails on any other module that
does either.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "adapters", "mappings", "gazetteer", "edrms", "finance_link", "health_link")
RUNTIME = ROOT / "hub" / "runtime.py"

_PATTERNS = (
    re.compile(r"^\s*(?:import gc\b|from gc import)"),
    re.compile(r"\bgc\.(?:collect|disable|enable|freeze|unfreeze|set_threshold)\("),
    re.compile(r"\b(?:get_context|set_start_method)\(\s*[\"'](?:fork|spawn|forkserver)[\"']"),
)


def violations(source: str) -> list[str]:
    """Where ``source`` tunes the collector or picks a start method: ``line: text`` for each."""
    return [f"{number}: {line.strip()}" for number, line in enumerate(source.splitlines(), 1)
            if any(p.search(line) for p in _PATTERNS)]


def test_only_the_runtime_module_tunes_the_collector_or_starts_processes() -> None:
    found = {
        str(path.relative_to(ROOT)): lines
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != RUNTIME and (lines := violations(path.read_text(encoding="utf-8")))
    }
    assert found == {}


@pytest.mark.parametrize("line", [
    "import gc",
    "    gc.collect()",
    "ctx = multiprocessing.get_context('spawn')",
    'multiprocessing.set_start_method("fork")',
])
def test_the_scan_finds_each_kind_of_second_place(line: str) -> None:
    assert violations(f"x = 1\n{line}\n") == [f"2: {line.strip()}"]


def test_the_runtime_module_itself_is_what_the_scan_would_find() -> None:
    assert violations(RUNTIME.read_text(encoding="utf-8"))
