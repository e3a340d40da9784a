"""The scheduled gazetteer pickup loads what waits in the drop folder, once."""

from __future__ import annotations

from pathlib import Path

from gazetteer.jobs import pick_up_feed
from gazetteer.simulator import generate_town, write_full
from hub.scheduler import JobContext
from hub.settings import Settings
from hub.store.db import Store


def test_scheduled_pickup_loads_the_drop_folder_once(store: Store, tmp_path: Path) -> None:
    settings = Settings(database_url=store.url, data_dir=tmp_path / "var")
    drop = tmp_path / "var" / "gazetteer" / "drop"
    drop.mkdir(parents=True)
    write_full(generate_town(blpus=60), drop / "town-full.csv")
    ctx = JobContext(store=store, settings=settings, job="gazetteer_pickup", node="test",
                     options={"drop_folder": "{data_dir}/gazetteer/drop", "min_age_seconds": 0})
    first = pick_up_feed(ctx)
    assert first["files"] == 1 and first["outcomes"] == {"town-full.csv": "applied"}
    assert (drop / "processed" / "town-full.csv").exists()
    assert pick_up_feed(ctx)["files"] == 0
