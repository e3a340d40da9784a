"""audit: append-only audit events, the people each touched, break-glass reviews

Revision ID: 0005_audit
Revises: 0001_foundation
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.tables

revision: str = "0005_audit"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
APPEND_ONLY = ("audit_events", "audit_subjects")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("recorded", hub.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("issuer", sa.String(length=256), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("break_glass_reason", sa.Text(), nullable=True),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_audit_events_event_id")),
    )
    op.create_index(op.f("ix_audit_events_recorded"), "audit_events", ["recorded"])
    op.create_index("ix_audit_events_user_recorded", "audit_events", ["user_id", "recorded"])
    op.create_table(
        "audit_subjects",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("audit_id", BigId, nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["audit_id"], ["audit_events.id"],
                                name=op.f("fk_audit_subjects_audit_id_audit_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_subjects")),
    )
    op.create_index(op.f("ix_audit_subjects_audit_id"), "audit_subjects", ["audit_id"])
    op.create_index(op.f("ix_audit_subjects_person_id"), "audit_subjects", ["person_id"])
    op.create_table(
        "break_glass_reviews",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("audit_id", BigId, nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviewed_by", sa.String(length=128), nullable=True),
        sa.Column("reviewed_at", hub.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", hub.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["audit_id"], ["audit_events.id"],
                                name=op.f("fk_break_glass_reviews_audit_id_audit_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_break_glass_reviews")),
        sa.UniqueConstraint("audit_id", name=op.f("uq_break_glass_reviews_audit_id")),
    )
    op.create_index(op.f("ix_break_glass_reviews_status"), "break_glass_reviews", ["status"])
    # The audit trail is append-only: the database itself refuses changes and deletions.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION carehub_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$""")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION carehub_audit_append_only()")
    else:
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                           "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS carehub_audit_append_only()")
    else:
        for table in APPEND_ONLY:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    op.drop_table("break_glass_reviews")
    op.drop_table("audit_subjects")
    op.drop_table("audit_events")
