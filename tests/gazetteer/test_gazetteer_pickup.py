"""Feed pickup: name order, processed/ or failed/ with a report; the same file twice is a no-op."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import func, select

from gazetteer.pickup import pick_up
from hub.store.addressing import GazetteerLoad
from hub.store.db import Store
from tests.support.gazetteer import TownFiles


def test_pickup_loads_in_order_and_files_each_away(
    store: Store, town_files: TownFiles, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    # The COU's name sorts after the full supply's, so it applies on top of it.
    shutil.copy(town_files.cou, drop / town_files.cou.name)
    shutil.copy(town_files.full, drop / town_files.full.name)
    (drop / "llpg-003-broken.csv").write_text("10,not a header\n")

    picked = pick_up(store, drop, min_age_seconds=0)
    assert [(p.file_name, p.outcome) for p in picked] == [
        ("llpg-001-full.csv", "applied"),
        ("llpg-002-cou.csv", "applied"),
        ("llpg-003-broken.csv", "rejected"),
    ]
    assert sorted(p.name for p in (drop / "processed").iterdir()) == [
        "llpg-001-full.csv",
        "llpg-001-full.csv.report.json",
        "llpg-002-cou.csv",
        "llpg-002-cou.csv.report.json",
    ]
    failed = json.loads((drop / "failed" / "llpg-003-broken.csv.report.json").read_text())
    assert (
        failed["outcome"] == "rejected" and failed["code"] == "CAREHUB-E511" and failed["line"] == 1
    )
    cou = json.loads((drop / "processed" / "llpg-002-cou.csv.report.json").read_text())
    assert {r["uprn"] for r in cou["retired"]} >= {str(town_files.summary.retired_uprn)}

    assert pick_up(store, drop, min_age_seconds=0) == []
    shutil.copy(town_files.full, drop / "llpg-001-full-again.csv")
    again = pick_up(store, drop, min_age_seconds=0)
    assert [p.outcome for p in again] == ["already_loaded"]
    assert (drop / "processed" / "llpg-001-full-again.csv.report.json").exists()
    with store.session() as session:
        applied = session.scalar(
            select(func.count())
            .select_from(GazetteerLoad)
            .where(GazetteerLoad.outcome == "applied")
        )
    assert applied == 2


def test_young_files_wait_for_the_next_run(
    store: Store, town_files: TownFiles, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(town_files.full, drop / "arriving.csv")
    assert pick_up(store, drop, min_age_seconds=3600) == []
    assert (drop / "arriving.csv").exists()
