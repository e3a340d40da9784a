"""Scheduled jobs of delivery, named by import path in ``config/schedules.toml``."""

from __future__ import annotations

from typing import Any

from hub.delivery.config import RetryPolicy, load_delivery_config
from hub.delivery.fanout import fan_out
from hub.delivery.queue import requeue_lost, settle_outbox
from hub.scheduler import JobContext


def route_outbox(ctx: JobContext) -> dict[str, Any]:
    """Route new outbox events to their subscribed targets (workers also do this between batches)."""
    config = load_delivery_config(ctx.settings)
    return {"routed": fan_out(ctx.store, config, batch=ctx.settings.worker.fan_out_batch)}


def requeue_lost_deliveries(ctx: JobContext) -> dict[str, Any]:
    """Give back the claims of workers that died mid-batch, once their lease has ended."""
    config = load_delivery_config(ctx.settings)
    policies = {name: t.retry for name, t in config.targets.items()}
    with ctx.store.session() as session:
        return {"requeued": requeue_lost(session, policies, RetryPolicy())}


def settle_outbox_events(ctx: JobContext) -> dict[str, Any]:
    """Mark outbox events delivered (or dead) once all their deliveries have settled."""
    with ctx.store.session() as session:
        return {"settled": settle_outbox(session, int(ctx.options.get("limit", 10_000)))}
