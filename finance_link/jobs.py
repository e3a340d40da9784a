"""The finance link's scheduled jobs (``config/schedules.toml``), run by the scheduler's leader."""

from __future__ import annotations

from typing import Any

from finance_link.actuals import pick_up_actuals
from finance_link.commitments import derive_commitments
from hub.scheduler import JobContext


def derive(ctx: JobContext) -> dict[str, Any]:
    """Derive commitment versions from the care plan and service changes not yet read."""
    return derive_commitments(ctx.store, ctx.settings).as_dict()


def pick_up(ctx: JobContext) -> dict[str, Any]:
    """Load the actuals CSVs the finance system dropped; each moved to processed/ or failed/ with a report."""
    return pick_up_actuals(ctx.store, ctx.settings)
