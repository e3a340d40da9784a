"""identity: matcher fields kept on person_index, and a postcode+given-name index for candidates

Revision ID: 0008_identity_index
Revises: 0001_foundation

``person_index.match_fields`` holds a golden person's fields already normalised for the
matcher (``hub.identity.table.normalised_fields``), so the resolver encodes candidates
without reading and decoding their documents. Rows written before this revision have it
NULL and the resolver reads their documents, as before. The composite index lets the
postcode+given-initial candidate lookup seek (postcode, initial) instead of filtering a
whole postcode.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_identity_index"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the matcher fields column and the postcode+given-name index."""
    with op.batch_alter_table("person_index", schema=None) as batch_op:
        batch_op.add_column(sa.Column("match_fields", sa.Text(), nullable=True))
        batch_op.create_index("ix_person_index_postcode_given", ["postcode", "given_name"], unique=False)


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("person_index", schema=None) as batch_op:
        batch_op.drop_index("ix_person_index_postcode_given")
        batch_op.drop_column("match_fields")
