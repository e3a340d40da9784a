"""The demo's gazetteer: a synthetic town's LLPG loaded before anything else is seeded.

`carehub demo` calls :func:`seed_demo` first (see ``[demo] seeders``): it writes
the town's full supply and a change-only update under ``data_dir/gazetteer``,
loads the full supply, and leaves the COU in the drop folder, where
``carehub gazetteer watch`` (or the scheduled pickup) applies it and moves the
people at retired UPRNs.
"""

from __future__ import annotations

from gazetteer.load import load_file
from gazetteer.simulator import generate_town, write_cou, write_full
from hub.settings import Settings
from hub.store.db import Store


def seed_demo(settings: Settings) -> str:
    """Write and load the demo town's LLPG; put its COU in the drop folder."""
    folder = settings.data_dir / "gazetteer"
    drop = folder / "drop"
    drop.mkdir(parents=True, exist_ok=True)
    # fewer properties than the people need homes, so every home is lived in (the COU touches people)
    town = generate_town(blpus=max(100, int(settings.demo.people * 0.9)))
    full = write_full(town, folder / "demo-town-full.csv")
    store = Store(settings.database_url)
    try:
        result = load_file(store, full)
    finally:
        store.dispose()
    cou = write_cou(town, drop / "demo-town-cou-0001.csv")
    return (f"seeded gazetteer: {len(town.properties):,} properties ({result.outcome}); "
            f"a change-only update waits in {drop} (it retires UPRN {cou.retired_uprn})")
