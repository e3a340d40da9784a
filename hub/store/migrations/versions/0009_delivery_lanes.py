"""delivery lanes: outbox.lane and per (target, lane) cursors; the happy path writes no row per event

Existing stores: every outbox row gets its lane from its ordering key; every target that has
deliveries gets a cursor per lane just after the last routed event, so events routed before this
migration stay with their delivery rows and the rest are read by the cursors.

Revision ID: 0009_delivery_lanes
Revises: 0001_foundation
Depends on: 0004_delivery
Create Date: 2026-11-27 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.store.tables import OUTBOX_LANES, UtcDateTime, lane_of, utcnow

revision: str = "0009_delivery_lanes"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0004_delivery"

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: a batch (copy-and-move) alter on SQLite would drop the outbox
    # table that deliveries refer to.
    op.add_column("outbox", sa.Column("lane", sa.Integer(), nullable=False, server_default="0"))
    bind = op.get_bind()
    outbox = sa.table("outbox", sa.column("id", BIG_ID), sa.column("ordering_key", sa.String),
                      sa.column("lane", sa.Integer))
    keys = [k for (k,) in bind.execute(sa.select(outbox.c.ordering_key).distinct())]
    by_lane: dict[int, list[str]] = {}
    for key in keys:
        by_lane.setdefault(lane_of(key), []).append(key)
    for lane, lane_keys in by_lane.items():
        if lane == 0:
            continue
        for i in range(0, len(lane_keys), 1000):
            bind.execute(sa.update(outbox).where(outbox.c.ordering_key.in_(lane_keys[i:i + 1000]))
                         .values(lane=lane))
    if bind.dialect.name != "sqlite":  # every writer sets the lane; SQLite cannot drop a default in place
        op.alter_column("outbox", "lane", server_default=None)
    op.create_index("ix_outbox_lane_id", "outbox", ["lane", "id"], unique=False)
    op.create_table(
        "delivery_cursors",
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("lane", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("position", BIG_ID, nullable=False),
        sa.Column("holder", sa.String(128), nullable=True),
        sa.Column("claim_id", sa.String(40), nullable=True),
        sa.Column("lease_until", UtcDateTime(timezone=True), nullable=True),
        sa.Column("served_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("delivered", BIG_ID, nullable=False),
        sa.Column("times_lost", sa.Integer(), nullable=False),
        sa.Column("lost_by", sa.String(128), nullable=True),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", "lane", name=op.f("pk_delivery_cursors")),
    )
    # Targets that already have deliveries continue after the last routed event (routing took the oldest
    # pending events first, so every event up to it was routed and has its rows where it was wanted).
    routed = bind.scalar(sa.text("SELECT max(id) FROM outbox WHERE status <> 'pending'")) or 0
    targets = [t for (t,) in bind.execute(sa.text("SELECT DISTINCT target FROM deliveries"))]
    if targets:
        now = utcnow()
        cursors = sa.table("delivery_cursors", *(sa.column(c) for c in (
            "target", "lane", "position", "served_at", "delivered", "times_lost", "updated_at")))
        bind.execute(sa.insert(cursors), [
            {"target": t, "lane": lane, "position": routed, "served_at": now, "delivered": 0, "times_lost": 0,
             "updated_at": now} for t in targets for lane in range(OUTBOX_LANES)])


def downgrade() -> None:
    op.drop_table("delivery_cursors")
    op.drop_index("ix_outbox_lane_id", table_name="outbox")
    op.drop_column("outbox", "lane")
