"""The gazetteer's scheduled job: pick up new LLPG files from the drop folder.

Named in config/schedules.toml as ``gazetteer.jobs:pick_up_feed``; the option
``drop_folder`` may use ``{data_dir}``. People at UPRNs a file retires are moved
or flagged (see :mod:`gazetteer.effects`), as when an operator loads by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gazetteer.pickup import pick_up
from hub.scheduler import JobContext


def pick_up_feed(ctx: JobContext) -> dict[str, Any]:
    """Load every file waiting in the drop folder, in name order; return what happened to each."""
    folder = Path(str(ctx.options.get("drop_folder", "{data_dir}/gazetteer/drop")).format(
        data_dir=ctx.settings.data_dir))
    if not folder.is_dir():
        return {"files": 0, "note": "no drop folder yet"}
    picked = pick_up(ctx.store, folder, float(ctx.options.get("min_age_seconds", 5)))
    return {
        "files": len(picked),
        "outcomes": {p.file_name: p.outcome for p in picked},
        "people_moved": sum(len(p.effects.moved) for p in picked if p.effects),
        "people_flagged": sum(len(p.effects.flagged) for p in picked if p.effects),
    }
