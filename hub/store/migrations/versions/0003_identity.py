"""identity: match links, review queue, merge history; blocking keys on person_index

Revision ID: 0003_identity
Revises: 0001_foundation
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.tables

revision: str = "0003_identity"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UTC = hub.store.tables.UtcDateTime(timezone=True)


def upgrade() -> None:
    """Add the identity tables and the person_index blocking columns."""
    with op.batch_alter_table("person_index", schema=None) as batch_op:
        batch_op.add_column(sa.Column("family_phonetic", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("given_phonetic", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("birth_year", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_person_index_family_phonetic_year", ["family_phonetic", "birth_year"], unique=False
        )
        batch_op.create_index(
            "ix_person_index_given_phonetic_year", ["given_phonetic", "birth_year"], unique=False
        )

    op.create_table(
        "match_links",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("person_a", sa.String(length=36), nullable=False),
        sa.Column("person_b", sa.String(length=200), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=False),
        sa.Column("decided_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_links")),
        sa.UniqueConstraint("person_a", "person_b", name="uq_match_links_pair"),
    )
    with op.batch_alter_table("match_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_match_links_person_a"), ["person_a"], unique=False)
        batch_op.create_index(batch_op.f("ix_match_links_person_b"), ["person_b"], unique=False)

    op.create_table(
        "person_merges",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("survivor_id", sa.String(length=36), nullable=False),
        sa.Column("merged_id", sa.String(length=36), nullable=False),
        sa.Column("merged_by", sa.String(length=128), nullable=False),
        sa.Column("merged_at", _UTC, nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("unmerged_by", sa.String(length=128), nullable=True),
        sa.Column("unmerged_at", _UTC, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_merges")),
    )
    with op.batch_alter_table("person_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_person_merges_survivor_id"), ["survivor_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_person_merges_merged_id"), ["merged_id"], unique=False)

    op.create_table(
        "match_reviews",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("person_a", sa.String(length=36), nullable=False),
        sa.Column("person_b", sa.String(length=36), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("decided_at", _UTC, nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("merge_id", _BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["merge_id"], ["person_merges.id"], name=op.f("fk_match_reviews_merge_id_person_merges")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_reviews")),
        sa.UniqueConstraint("person_a", "person_b", name="uq_match_reviews_pair"),
    )
    with op.batch_alter_table("match_reviews", schema=None) as batch_op:
        batch_op.create_index("ix_match_reviews_status_id", ["status", "id"], unique=False)


def downgrade() -> None:
    """Drop the identity tables and the person_index blocking columns."""
    with op.batch_alter_table("match_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_match_reviews_status_id")
    op.drop_table("match_reviews")
    with op.batch_alter_table("person_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_merges_merged_id"))
        batch_op.drop_index(batch_op.f("ix_person_merges_survivor_id"))
    op.drop_table("person_merges")
    with op.batch_alter_table("match_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_match_links_person_b"))
        batch_op.drop_index(batch_op.f("ix_match_links_person_a"))
    op.drop_table("match_links")
    with op.batch_alter_table("person_index", schema=None) as batch_op:
        batch_op.drop_index("ix_person_index_given_phonetic_year")
        batch_op.drop_index("ix_person_index_family_phonetic_year")
        batch_op.drop_column("birth_year")
        batch_op.drop_column("given_phonetic")
        batch_op.drop_column("family_phonetic")
