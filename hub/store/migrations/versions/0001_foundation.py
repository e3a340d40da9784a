"""foundation: raw records, quarantine, entities, provenance, cursors, outbox

Revision ID: 0001_foundation
Revises: 
Create Date: 2026-11-23 02:29:06.677433
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.tables

revision: str = '0001_foundation'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cursors',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cursors')),
    sa.UniqueConstraint('source', 'stream', name='uq_cursors_source_stream')
    )
    op.create_table('entities',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('created_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entities'))
    )
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entities_entity_type'), ['entity_type'], unique=False)
        batch_op.create_index('ix_entities_person', ['person_id', 'entity_type'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=36), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('ordering_key', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=True),
    sa.Column('created_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_entity_id'), ['entity_id'], unique=False)
        batch_op.create_index('ix_outbox_status_id', ['status', 'id'], unique=False)

    op.create_table('raw_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('source_id', sa.String(length=128), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('received_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('source_modified', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_raw_records')),
    sa.UniqueConstraint('source', 'stream', 'source_id', 'content_hash', name='uq_raw_records_content')
    )
    with op.batch_alter_table('raw_records', schema=None) as batch_op:
        batch_op.create_index('ix_raw_records_source_status', ['source', 'status'], unique=False)

    op.create_table('source_links',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('source_id', sa.String(length=128), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=36), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('raw_record_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('first_seen', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source_links')),
    sa.UniqueConstraint('source', 'stream', 'source_id', name='uq_source_links_key')
    )
    with op.batch_alter_table('source_links', schema=None) as batch_op:
        batch_op.create_index('ix_source_links_entity', ['entity_id'], unique=False)

    op.create_table('sync_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('started_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', hub.store.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_runs'))
    )
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_runs_source'), ['source'], unique=False)

    op.create_table('person_identifiers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['entities.id'], name=op.f('fk_person_identifiers_person_id_entities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person_identifiers')),
    sa.UniqueConstraint('system', 'value', name='uq_person_identifiers_system_value')
    )
    with op.batch_alter_table('person_identifiers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_identifiers_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_person_identifiers_value'), ['value'], unique=False)

    op.create_table('person_index',
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('nhs_number', sa.String(length=10), nullable=True),
    sa.Column('nhs_verified', sa.Boolean(), nullable=False),
    sa.Column('family_name', sa.String(length=100), nullable=True),
    sa.Column('given_name', sa.String(length=100), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('sex', sa.String(length=8), nullable=True),
    sa.Column('postcode', sa.String(length=8), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('merged_into', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['entities.id'], name=op.f('fk_person_index_person_id_entities')),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_person_index'))
    )
    with op.batch_alter_table('person_index', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_index_birth_date'), ['birth_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_person_index_family_name'), ['family_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_person_index_nhs_number'), ['nhs_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_person_index_postcode'), ['postcode'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('raw_record_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('stream', sa.String(length=64), nullable=False),
    sa.Column('source_id', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('field', sa.String(length=128), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('created_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hub.store.tables.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(
        ['raw_record_id'], ['raw_records.id'], name=op.f('fk_quarantine_raw_record_id_raw_records')
    ),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine')),
    sa.UniqueConstraint('raw_record_id', name=op.f('uq_quarantine_raw_record_id'))
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_reason'), ['reason'], unique=False)
        batch_op.create_index('ix_quarantine_key', ['source', 'stream', 'source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quarantine_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_status'))
        batch_op.drop_index('ix_quarantine_key')
        batch_op.drop_index(batch_op.f('ix_quarantine_reason'))

    op.drop_table('quarantine')
    with op.batch_alter_table('person_index', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_index_postcode'))
        batch_op.drop_index(batch_op.f('ix_person_index_nhs_number'))
        batch_op.drop_index(batch_op.f('ix_person_index_family_name'))
        batch_op.drop_index(batch_op.f('ix_person_index_birth_date'))

    op.drop_table('person_index')
    with op.batch_alter_table('person_identifiers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_identifiers_value'))
        batch_op.drop_index(batch_op.f('ix_person_identifiers_person_id'))

    op.drop_table('person_identifiers')
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_runs_source'))

    op.drop_table('sync_runs')
    with op.batch_alter_table('source_links', schema=None) as batch_op:
        batch_op.drop_index('ix_source_links_entity')

    op.drop_table('source_links')
    with op.batch_alter_table('raw_records', schema=None) as batch_op:
        batch_op.drop_index('ix_raw_records_source_status')

    op.drop_table('raw_records')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_id')
        batch_op.drop_index(batch_op.f('ix_outbox_entity_id'))

    op.drop_table('outbox')
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.drop_index('ix_entities_person')
        batch_op.drop_index(batch_op.f('ix_entities_entity_type'))

    op.drop_table('entities')
    op.drop_table('cursors')
