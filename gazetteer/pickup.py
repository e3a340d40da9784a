"""Feed pickup: load the gazetteer files dropped in a folder, in name order, and file them away.

Each file is loaded (full supply or COU, from its header); an applied file, or
one already applied before (same sha256), moves to ``processed/``, a rejected
one to ``failed/``, each with ``<name>.report.json`` beside it saying what
happened. Files younger than ``min_age_seconds`` are left for the next run, so
a file still being copied in is not taken half-written. The scheduler calls
:func:`pick_up` on a timer; ``carehub gazetteer watch`` does the same by hand.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gazetteer.dtf import FeedRejected
from gazetteer.effects import update_people
from gazetteer.load import LoadResult, load_file
from hub.addresses import AddressEffects
from hub.store.db import Store

log = logging.getLogger(__name__)

PROCESSED = "processed"
FAILED = "failed"
REPORT_SUFFIX = ".report.json"


@dataclass
class PickedUp:
    """One file taken from the drop folder: how it ended and where it went."""

    file_name: str
    outcome: str
    moved_to: Path
    report_path: Path
    result: LoadResult | None = None
    effects: AddressEffects | None = None
    error: str | None = None


def waiting_files(drop_folder: Path, min_age_seconds: float = 5.0) -> list[Path]:
    """The files waiting in the drop folder, in name order (reports and hidden files ignored)."""
    now = time.time()
    return sorted(
        path
        for path in Path(drop_folder).iterdir()
        if path.is_file()
        and not path.name.startswith(".")
        and not path.name.endswith(REPORT_SUFFIX)
        and now - path.stat().st_mtime >= min_age_seconds
    )


def pick_up(store: Store, drop_folder: Path, min_age_seconds: float = 5.0) -> list[PickedUp]:
    """Load each waiting file in ``drop_folder`` in name order; move it to processed/ or failed/.

    A rejected file does not stop the files after it. Errors other than a
    rejection (the store is down) propagate and leave the file where it is,
    to be tried again on the next run.
    """
    drop = Path(drop_folder)
    (drop / PROCESSED).mkdir(parents=True, exist_ok=True)
    (drop / FAILED).mkdir(parents=True, exist_ok=True)
    picked: list[PickedUp] = []
    for path in waiting_files(drop, min_age_seconds):
        report: dict[str, Any]
        try:
            result = load_file(store, path)
        except FeedRejected as exc:
            report = {
                "file_name": path.name,
                "outcome": "rejected",
                "code": exc.code,
                "reason": exc.reason,
                "line": exc.line,
                "field": exc.field,
                "message": str(exc),
            }
            target = _move(path, drop / FAILED)
            picked.append(
                PickedUp(
                    path.name, "rejected", target, _write_report(target, report), error=str(exc)
                )
            )
            continue
        effects = update_people(store, result)
        report = {**result.report(), "people_moved": effects.moved, "people_flagged": effects.flagged}
        target = _move(path, drop / PROCESSED)
        picked.append(
            PickedUp(
                path.name,
                result.outcome,
                target,
                _write_report(target, report),
                result=result,
                effects=effects,
            )
        )
        log.info("gazetteer pickup: load %s %s", result.load_id, result.outcome)
    return picked


def _move(path: Path, folder: Path) -> Path:
    target = folder / path.name
    stamp = 1
    while target.exists() or target.with_name(target.name + REPORT_SUFFIX).exists():
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
        stamp += 1
    shutil.move(str(path), target)
    return target


def _write_report(target: Path, report: dict[str, Any]) -> Path:
    path = target.with_name(target.name + REPORT_SUFFIX)
    path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return path
