"""transitions: the cohort's facts, one narrow row per person, and their backfill

Revision ID: 0014_transition_cohort
Revises: 0013_transitions

``transition_cohort`` (:mod:`hub.store.cohort`) holds what puts a person in the transitions
cohort - birth date (indexed), died, merged, disabled, open looked-after / child-in-need /
care-leaver / EHC-plan involvement, the latest Transition's id, stage, continuity flag and
whether the adult plan is in place - kept in step by the golden-record writer, so the due
scan is one range query on birth date. The upgrade computes every row from the documents
the store already holds (the same as ``carehub db rebuild-cohort``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision: str = "0014_transition_cohort"
down_revision: str | Sequence[str] | None = "0013_transitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table and its birth-date index, then fill it from the store's documents."""
    op.create_table(
        "transition_cohort",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("dead", sa.Boolean(), nullable=False),
        sa.Column("merged", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("looked_after", sa.Boolean(), nullable=False),
        sa.Column("child_in_need", sa.Boolean(), nullable=False),
        sa.Column("care_leaver", sa.Boolean(), nullable=False),
        sa.Column("ehc_plan", sa.Boolean(), nullable=False),
        sa.Column("transition_id", sa.String(length=36), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("continuity_flag", sa.Boolean(), nullable=False),
        sa.Column("adult_plan", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_transition_cohort")),
    )
    op.create_index("ix_transition_cohort_birth_date", "transition_cohort", ["birth_date"])
    from hub.store.cohort import rebuild

    session = Session(bind=op.get_bind())
    rebuild(session)
    session.flush()


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_transition_cohort_birth_date", table_name="transition_cohort")
    op.drop_table("transition_cohort")
