"""transitions: each move's steps and the items its adult referral carried

Revision ID: 0013_transitions
Revises: 0001_foundation
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.tables

revision: str = "0013_transitions"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "transition_steps",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("transition_id", sa.String(length=36), nullable=False),
        sa.Column("at", hub.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["transition_id"], ["entities.id"],
                                name=op.f("fk_transition_steps_transition_id_entities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transition_steps")),
    )
    op.create_index("ix_transition_steps_transition", "transition_steps", ["transition_id", "id"])
    op.create_table(
        "transition_items",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("transition_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("receipt", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", hub.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["transition_id"], ["entities.id"],
                                name=op.f("fk_transition_items_transition_id_entities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transition_items")),
    )
    op.create_index("ix_transition_items_transition", "transition_items", ["transition_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_transition_items_transition", table_name="transition_items")
    op.drop_table("transition_items")
    op.drop_index("ix_transition_steps_transition", table_name="transition_steps")
    op.drop_table("transition_steps")
