"""identity models: the m and u the resolver learned per source, kept across restarts; merges the heads

Revision ID: 0015_identity_models
Revises: every head before it (0002_addressing, 0005_audit, 0006_data_quality, 0007_health, 0009_delivery_lanes,
0011_edrms, 0012_finance_items, 0012_review_partner, 0014_transition_cohort), so from here the store has one
line of revisions again. (Alembic still names ``0004_delivery`` a head: ``0009_delivery_lanes`` names it in
``depends_on``, not as its parent, and its row leaves ``alembic_version`` when 0009 runs, so a merge cannot
name it; ``upgrade()`` goes to every head, as before.)

``identity_models`` (:class:`hub.store.identity.IdentityModel`) holds, per source, the model the
resolver last learned in a sync (m and u as JSON; the prior is always the store's), when, from how
many records, and the identity configuration's fingerprint (a model learned under another
configuration is not used). Nothing to backfill: a store learns its models at its next large sync.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.tables

revision: str = "0015_identity_models"
down_revision: str | Sequence[str] | None = (
    "0002_addressing",
    "0005_audit",
    "0006_data_quality",
    "0007_health",
    "0009_delivery_lanes",
    "0011_edrms",
    "0012_finance_items",
    "0012_review_partner",
    "0014_transition_cohort",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table."""
    op.create_table(
        "identity_models",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("model", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("learned_at", hub.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_identity_models")),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("identity_models")
