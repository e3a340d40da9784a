"""The transitions' scheduled jobs (config/schedules.toml): the daily scan and following referrals."""

from __future__ import annotations

from datetime import date
from typing import Any

from hub.errors import ConfigError
from hub.registry import load_object
from hub.scheduler import JobContext
from hub.transitions import move
from hub.transitions.due import scan


def scan_cohort(ctx: JobContext) -> dict[str, Any]:
    """Who is due today, and a continuity flag for everyone 18 with no adult plan (s66)."""
    today = date.today()
    with ctx.store.session() as session:
        entries = scan(session, today, ctx.settings.transitions)
        flagged = move.raise_continuity_flags(session, today)
    return {"due": len(entries), "overdue": sum(1 for e in entries if e.overdue), "continuity_flags": flagged}


def follow_referrals(ctx: JobContext) -> dict[str, Any]:
    """Ask the adults' system about every referral under way ([transitions.adults_system])."""
    options = dict(ctx.settings.transitions.adults_system)
    client_path = options.pop("client", None)
    if not client_path:
        raise ConfigError("transitions.adults_system.client is not set: nothing to follow referrals with")
    client = load_object(str(client_path))(options)
    try:
        with ctx.store.session() as session:
            return move.follow(session, client, date.today())
    finally:
        client.close()
