"""review partner index: the open identity reviews of a person, by either side of the pair

Revision ID: 0012_review_partner
Revises: 0003_identity (the identity tables; a branch of its own, as the others are)

The access decision reads, for every record open and search page, the open reviews a person waits in
(a record held beside a sealed person is sealed with her until decided). ``uq_match_reviews_pair``
serves the pair's first person; this index serves the second.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_review_partner"
down_revision: str | Sequence[str] | None = "0003_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_match_reviews_person_b", "match_reviews", ["person_b"])


def downgrade() -> None:
    op.drop_index("ix_match_reviews_person_b", table_name="match_reviews")
