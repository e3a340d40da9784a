"""Run one benchmark on the code before and after a change, in the same run, and print the two side by side.

The *before* tree is ``--ref`` (default ``main``) exported with ``git archive`` into a temporary
folder; the *after* tree is this checkout, or ``--after REF`` exported the same way. Both run the
benchmark script of this checkout (copied into each exported tree), each with its own tree first on
``PYTHONPATH`` and as working directory, so only the hub's code differs; with ``--own-scripts`` each
tree runs its own copy of the script instead (for a benchmark whose script follows the code it drives,
such as ``api_load.py``, which serves the hub the way its tree's ``carehub serve`` does). The runs alternate
(before, after, before, after...) ``--rounds`` times, each preceded by the load average, and
every round's output is printed in two columns.

    python bench/before_after.py [--ref main] [--after HEAD] [--rounds 1] -- migrate.py --people 20000 --no-pg
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from itertools import zip_longest
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def export(ref: str, into: Path, name: str, own_scripts: bool = False) -> Path:
    """The tree of ``ref`` under ``into``/``name``, with this checkout's benchmark scripts (unless ``own_scripts``)."""
    archive = into / "tree.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref], stdout=fh, check=True)
    tree = into / name
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    archive.unlink()
    for script in [] if own_scripts else HERE.glob("*.py"):
        shutil.copy(script, tree / "bench" / script.name)
    return tree


def run(tree: Path, script: str, args: list[str]) -> list[str]:
    """The benchmark's output lines, run from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, str(tree / "bench" / script), *args], cwd=tree, env=env,
                          capture_output=True, text=True, check=False)
    lines = [f"load average {os.getloadavg()[0]:.1f} after; exit {proc.returncode}", *proc.stdout.splitlines()]
    if proc.returncode:
        lines += proc.stderr.splitlines()[-15:]
    return lines


def side_by_side(before: list[str], after: list[str]) -> str:
    """Two columns: before | after."""
    width = max((len(line) for line in before), default=0)
    rows = [f"{'BEFORE':<{width}} | AFTER"]
    rows += [f"{b:<{width}} | {a}" for b, a in zip_longest(before, after, fillvalue="")]
    return "\n".join(rows)


def main() -> None:
    """Run the benchmark on both trees and print the outputs side by side."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="main", help="The code before (a git ref).")
    parser.add_argument("--after", default=None, help="The code after (a git ref); default: this checkout.")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--own-scripts", action="store_true",
                        help="Each tree runs its own copy of the benchmark script (default: this checkout's).")
    parser.add_argument("script", help="A script of bench/, e.g. migrate.py.")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    args = [a for a in options.args if a != "--"]
    work = Path(tempfile.mkdtemp(prefix="carehub-before-after-"))
    try:
        before_tree = export(options.ref, work, "before", options.own_scripts)
        after_tree = export(options.after, work, "after", options.own_scripts) if options.after else ROOT
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", options.after or "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        base = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", options.ref], capture_output=True,
                              text=True, check=True).stdout.strip()
        after_name = options.after or "this checkout"
        print(f"bench/{options.script} {' '.join(args)}: before {options.ref} ({base}), after {after_name} "
              f"({head}); {os.cpu_count()} CPUs, load average {os.getloadavg()}")
        for round_no in range(1, options.rounds + 1):
            before = [f"load average {os.getloadavg()[0]:.1f} before", *run(before_tree, options.script, args)]
            after = [f"load average {os.getloadavg()[0]:.1f} before", *run(after_tree, options.script, args)]
            print(f"\n-- round {round_no}")
            print(side_by_side(before, after), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
