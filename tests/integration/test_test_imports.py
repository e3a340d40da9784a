"""Tests share helpers only through ``tests/support``: no test module, conftest or benchmark imports another
test module or a conftest (fixtures reach tests through pytest, helpers through ``tests.support``).

Lazy imports (inside functions), relative imports and imports of a sibling file by its bare name (which
work only because pytest puts a test's folder on ``sys.path``) count.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = "tests.support"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, relative ones as written (leading dots kept)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return sorted(found)


def wrong_imports(root: Path = ROOT) -> list[str]:
    """Each import of a test module, a conftest or a sibling file from the suite or the benchmarks."""
    sources = sorted((root / "tests").rglob("*.py")) + sorted((root / "bench").rglob("*.py"))
    # a file of the suite outside tests/support is reachable by its bare name from its own folder
    bare = {p.stem for p in (root / "tests").rglob("*.py") if SUPPORT.replace(".", "/") not in p.as_posix()}
    found = []
    for path in sources:
        where = path.relative_to(root)
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if module.startswith("."):
                found.append(f"{where}:{line}: relative import {module}")
            elif top == "tests" and module != SUPPORT and not module.startswith(SUPPORT + "."):
                found.append(f"{where}:{line}: {module} (shared helpers live in tests/support)")
            elif top in bare:
                found.append(f"{where}:{line}: {module} (a file of the suite imported by its bare name)")
    return found


def test_tests_import_helpers_only_from_tests_support() -> None:
    assert wrong_imports() == []


def test_the_check_finds_each_kind_of_wrong_import(tmp_path: Path) -> None:
    tests, bench = tmp_path / "tests", tmp_path / "bench"
    (tests / "support").mkdir(parents=True)
    (tests / "record").mkdir()
    bench.mkdir()
    (tests / "support" / "pages.py").write_text("from tests.support.ports import free_port\n")
    (tests / "record" / "synthetic.py").write_text("")
    (tests / "record" / "test_a.py").write_text(
        "from tests.support.pages import serve\n"
        "from tests.record.test_b import helper\n"
        "def test_x():\n    from tests.conftest import BACKENDS\n"
        "from . import synthetic\n"
        "import synthetic\n")
    (bench / "load.py").write_text("import tests.record.synthetic\nfrom tests.support import pages\n")
    assert wrong_imports(tmp_path) == [
        "tests/record/test_a.py:2: tests.record.test_b (shared helpers live in tests/support)",
        "tests/record/test_a.py:4: tests.conftest (shared helpers live in tests/support)",
        "tests/record/test_a.py:5: relative import .",
        "tests/record/test_a.py:6: synthetic (a file of the suite imported by its bare name)",
        "bench/load.py:1: tests.record.synthetic (shared helpers live in tests/support)",
    ]
