"""Scheduled jobs of delivery, named by import path in ``config/schedules.toml``."""

from __future__ import annotations

from typing import Any

from hub.delivery.config import RetryPolicy, load_delivery_config
from hub.delivery.queue import requeue_lost
from hub.scheduler import JobContext


def requeue_lost_deliveries(ctx: JobContext) -> dict[str, Any]:
    """Give back the delivery rows claimed by workers that died mid-batch, once their lease has ended.

    (A lane whose holder died needs no job: the next worker takes it when its lease ends.)
    """
    config = load_delivery_config(ctx.settings)
    policies = {name: t.retry for name, t in config.targets.items()}
    with ctx.store.session() as session:
        return {"requeued": requeue_lost(session, policies, RetryPolicy())}
