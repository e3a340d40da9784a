"""finance link: commitment versions, lines, actuals, files, variances

Revision ID: 0011_finance
Revises: 0010_sync_indexes

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.tables

revision: str = '0011_finance'
down_revision: str | Sequence[str] | None = '0010_sync_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('finance_actual_files',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('accepted', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('report', sa.Text(), nullable=False),
    sa.Column('received_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_actual_files')),
    sa.UniqueConstraint('sha256', name=op.f('uq_finance_actual_files_sha256'))
    )
    op.create_table('finance_actuals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('line_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('period_from', sa.Date(), nullable=False),
    sa.Column('period_to', sa.Date(), nullable=False),
    sa.Column('amount_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('origin', sa.String(length=160), nullable=False),
    sa.Column('received_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_actuals')),
    sa.UniqueConstraint('reference', name=op.f('uq_finance_actuals_reference'))
    )
    with op.batch_alter_table('finance_actuals', schema=None) as batch_op:
        batch_op.create_index('ix_finance_actuals_line', ['line_id'], unique=False)

    op.create_table('finance_lines',
    sa.Column('line_id', sa.String(length=36), nullable=False),
    sa.Column('commitment_id', sa.String(length=36), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('care_plan_id', sa.String(length=36), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('service_type', sa.String(length=32), nullable=False),
    sa.Column('provider_code', sa.String(length=16), nullable=True),
    sa.Column('cost_centre', sa.String(length=16), nullable=False),
    sa.Column('weekly_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('total_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('start', sa.Date(), nullable=False),
    sa.Column('end', sa.Date(), nullable=True),
    sa.Column('updated_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('line_id', name=op.f('pk_finance_lines')),
    sa.UniqueConstraint('commitment_id', name=op.f('uq_finance_lines_commitment_id'))
    )
    with op.batch_alter_table('finance_lines', schema=None) as batch_op:
        batch_op.create_index('ix_finance_lines_person', ['person_id'], unique=False)
        batch_op.create_index('ix_finance_lines_plan', ['care_plan_id'], unique=False)

    op.create_table('finance_variances',
    sa.Column('line_id', sa.String(length=36), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('planned_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('actual_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('percent', sa.String(length=12), nullable=False),
    sa.Column('raised_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('line_id', name=op.f('pk_finance_variances'))
    )
    with op.batch_alter_table('finance_variances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finance_variances_person_id'), ['person_id'], unique=False)

    op.create_table('finance_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('line_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('care_plan_id', sa.String(length=36), nullable=True),
    sa.Column('service_type', sa.String(length=32), nullable=False),
    sa.Column('unit', sa.String(length=8), nullable=False),
    sa.Column('cost_period', sa.String(length=10), nullable=False),
    sa.Column('provider_code', sa.String(length=16), nullable=True),
    sa.Column('supplier_number', sa.String(length=16), nullable=True),
    sa.Column('supplier_site', sa.String(length=8), nullable=True),
    sa.Column('cost_centre', sa.String(length=16), nullable=False),
    sa.Column('subjective', sa.String(length=16), nullable=False),
    sa.Column('vat_treatment', sa.String(length=8), nullable=False),
    sa.Column('unit_cost_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('units_x100', sa.Integer(), nullable=False),
    sa.Column('weekly_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('vat_weekly_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contribution_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('total_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('total_basis', sa.String(length=8), nullable=False),
    sa.Column('delta_weekly_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('delta_total_pence', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('start', sa.Date(), nullable=False),
    sa.Column('end', sa.Date(), nullable=True),
    sa.Column('approved_by', sa.String(length=100), nullable=True),
    sa.Column('approved_on', sa.Date(), nullable=True),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('recorded_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_versions')),
    sa.UniqueConstraint('line_id', 'version', name='uq_finance_versions_line_version')
    )


def downgrade() -> None:
    op.drop_table('finance_versions')
    with op.batch_alter_table('finance_variances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finance_variances_person_id'))

    op.drop_table('finance_variances')
    with op.batch_alter_table('finance_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_finance_lines_plan')
        batch_op.drop_index('ix_finance_lines_person')

    op.drop_table('finance_lines')
    with op.batch_alter_table('finance_actuals', schema=None) as batch_op:
        batch_op.drop_index('ix_finance_actuals_line')

    op.drop_table('finance_actuals')
    op.drop_table('finance_actual_files')
