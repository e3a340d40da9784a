"""finance versions keep their feed item: the JSON the feed, the CSV and the SOAP push carry

Revision ID: 0012_finance_items
Revises: 0011_finance

A version never changes, so its feed item is made once when it is written and the feed
hands out the stored JSON (bench/finance.py: the feed's CPU per version).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_finance_items"
down_revision: str | Sequence[str] | None = "0011_finance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("finance_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("finance_versions", schema=None) as batch_op:
        batch_op.drop_column("item")
