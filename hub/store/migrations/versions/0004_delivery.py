"""delivery: deliveries, their history, circuits, job runs, leases

Revision ID: 0004_delivery
Revises: 0001_foundation
Create Date: 2026-11-23 02:49:08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.store.tables import UtcDateTime

revision: str = "0004_delivery"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CLAIMABLE = sa.text("status IN ('pending', 'failed')")
OPEN_KEY = sa.text("status IN ('pending', 'failed', 'in_flight', 'dead')")
UNSETTLED = sa.text("status <> 'delivered'")


def upgrade() -> None:
    op.create_table(
        "delivery_circuits",
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("retry_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("times_opened", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_delivery_circuits")),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("started_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("ix_job_runs_job_id", "job_runs", ["job", "id"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("acquired_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("outbox_id", BIG_ID, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("ordering_key", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", UtcDateTime(timezone=True), nullable=True),
        sa.Column("claim_id", sa.String(40), nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_class", sa.String(64), nullable=True),
        sa.Column("receipt", sa.String(256), nullable=True),
        sa.Column("replay_of", BIG_ID, nullable=True),
        sa.Column("replayed_by", BIG_ID, nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], name=op.f("fk_deliveries_outbox_id_outbox")),
        sa.ForeignKeyConstraint(["replay_of"], ["deliveries.id"], name=op.f("fk_deliveries_replay_of_deliveries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("outbox_id", "target", "generation", name="uq_deliveries_event_target_generation"),
    )
    op.create_index("ix_deliveries_claimable", "deliveries", ["target", "outbox_id"],
                    postgresql_where=CLAIMABLE, sqlite_where=CLAIMABLE)
    op.create_index("ix_deliveries_open_key", "deliveries", ["target", "ordering_key", "outbox_id"],
                    postgresql_where=OPEN_KEY, sqlite_where=OPEN_KEY)
    op.create_index("ix_deliveries_status_target", "deliveries", ["status", "target", "updated_at"],
                    postgresql_where=UNSETTLED, sqlite_where=UNSETTLED)
    op.create_table(
        "delivery_history",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", BIG_ID, nullable=False),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("actor", sa.String(128), nullable=True),
        sa.Column("error_class", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("receipt", sa.String(256), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"],
                                name=op.f("fk_delivery_history_delivery_id_deliveries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_history")),
    )
    op.create_index(op.f("ix_delivery_history_delivery_id"), "delivery_history", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("delivery_history")
    op.drop_table("deliveries")
    op.drop_table("leases")
    op.drop_table("job_runs")
    op.drop_table("delivery_circuits")
