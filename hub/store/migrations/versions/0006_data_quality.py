"""data quality issues raised by the hub (retired UPRNs and the like)

Revision ID: 0006_data_quality
Revises: 0001_foundation
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.tables

revision: str = "0006_data_quality"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_quality_issues",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("entity_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", hub.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", hub.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_quality_issues")),
    )
    with op.batch_alter_table("data_quality_issues", schema=None) as batch_op:
        batch_op.create_index("ix_data_quality_issues_status_kind", ["status", "kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_data_quality_issues_entity_id"), ["entity_id"], unique=False)


def downgrade() -> None:
    op.drop_table("data_quality_issues")
