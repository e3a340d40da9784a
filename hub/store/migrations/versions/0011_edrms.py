"""EDRMS documents and their links to people and cases

Revision ID: 0011_edrms
Revises: 0001_foundation

The EDRMS link's documents (metadata as crawled, identifiers found, link state, retention) and every
link made or ended, with who, when and why (edrms/, docs/edrms.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.tables

revision: str = '0011_edrms'
down_revision: str | Sequence[str] | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('edrms_documents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('repository', sa.String(length=64), nullable=False),
    sa.Column('object_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('document_type', sa.String(length=64), nullable=True),
    sa.Column('record_class', sa.String(length=64), nullable=True),
    sa.Column('mime_type', sa.String(length=100), nullable=True),
    sa.Column('content_length', sa.BigInteger(), nullable=True),
    sa.Column('author', sa.String(length=100), nullable=True),
    sa.Column('created', hub.store.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('modified', hub.store.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('change_token', sa.String(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('person_ref', sa.String(length=64), nullable=True),
    sa.Column('nhs_number', sa.String(length=10), nullable=True),
    sa.Column('client_ref', sa.String(length=64), nullable=True),
    sa.Column('case_ref', sa.String(length=64), nullable=True),
    sa.Column('written', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('orphan_reason', sa.String(length=40), nullable=True),
    sa.Column('person_id', sa.String(length=36), nullable=True),
    sa.Column('episode_id', sa.String(length=36), nullable=True),
    sa.Column('retain_until', sa.Date(), nullable=True),
    sa.Column('retention_rule', sa.String(length=64), nullable=True),
    sa.Column('legal_holds', sa.JSON(), nullable=False),
    sa.Column('first_seen', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_edrms_documents')),
    sa.UniqueConstraint('repository', 'object_id', name='uq_edrms_documents_object')
    )
    with op.batch_alter_table('edrms_documents', schema=None) as batch_op:
        batch_op.create_index('ix_edrms_documents_person', ['person_id'], unique=False)
        batch_op.create_index('ix_edrms_documents_retain', ['retain_until'], unique=False)
        batch_op.create_index('ix_edrms_documents_status', ['status', 'id'], unique=False)

    op.create_table('edrms_links',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('document_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('episode_id', sa.String(length=36), nullable=True),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('basis', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('ended_by', sa.String(length=128), nullable=True),
    sa.Column('ended_at', hub.store.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['edrms_documents.id'],
                            name=op.f('fk_edrms_links_document_id_edrms_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_edrms_links'))
    )
    with op.batch_alter_table('edrms_links', schema=None) as batch_op:
        batch_op.create_index('ix_edrms_links_document', ['document_id', 'active'], unique=False)
        batch_op.create_index(batch_op.f('ix_edrms_links_person_id'), ['person_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('edrms_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_edrms_links_person_id'))
        batch_op.drop_index('ix_edrms_links_document')

    op.drop_table('edrms_links')
    with op.batch_alter_table('edrms_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_edrms_documents_status')
        batch_op.drop_index('ix_edrms_documents_retain')
        batch_op.drop_index('ix_edrms_documents_person')

    op.drop_table('edrms_documents')
