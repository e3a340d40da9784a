"""sync indexes: drop the three indexes of the sync-written tables that no query needs

Revision ID: 0010_sync_indexes
Revises: 0008_identity_index

Every row a sync writes pays for each index of its table. An audit of the tables a sync writes
(raw_records, source_links, entities, outbox, person_index, person_identifiers) against every
query under hub/, adapters/, the links, gazetteer/, edrms/ and tests/ found three no query needs:

- ``ix_outbox_entity_id``: nothing under hub/ or the links filters the outbox by entity id
  (delivery reads it by lane and id, the identity index by id and entity type); only tests do,
  on a few rows.
- ``ix_entities_entity_type``: two values in five are alike and it is written on every insert.
  Its queries are served otherwise: the status counts per type (``hub.status``, the admin's
  ``carehub status`` and ``/ops/status``, not a hot path) by a scan of ``ix_entities_person``
  on SQLite (it carries ``entity_type``, so the documents are not read; on PostgreSQL an
  index-only scan of it when the visibility map allows, else a sequential scan of the table),
  the access rules' and FHIR reads by ``ix_entities_person`` and the primary key; the UPRN
  re-pointing (``hub.addresses``, a rare gazetteer change) reads every Person document anyway.
- ``ix_person_index_postcode``: ``ix_person_index_postcode_given`` (postcode, given_name, from
  0008_identity_index) serves every lookup by postcode.

Kept, with the query each one serves:

- raw_records: ``uq_raw_records_content`` (the pipeline's lookup of a record by source key and
  content hash; idempotency), ``ix_raw_records_source_status`` (``hub.status`` counts per source
  and status).
- source_links: ``uq_source_links_key`` (the pipeline's lookup of known records and of references
  by source key), ``ix_source_links_entity`` (the record view's provenance, identity's review
  and merge/unmerge by entity id).
- entities: primary key (the pipeline's existing entities, every read by id),
  ``ix_entities_person`` (a person's record, the access rules, the status counts).
- outbox: ``event_id`` unique (event ids stay unique; the identity index's check of the outbox
  head), ``ix_outbox_status_id`` (events settled before lanes, delivery and status),
  ``ix_outbox_lane_id`` (delivery reads each lane in order).
- person_index: primary key, ``ix_person_index_nhs_number`` (exact identity, record search by NHS
  number), ``ix_person_index_family_name`` (record search and its name suggestions),
  ``ix_person_index_birth_date`` (record search by birth date),
  ``ix_person_index_family_phonetic_year`` and ``ix_person_index_given_phonetic_year`` (identity's
  blocking keys), ``ix_person_index_postcode_given`` (identity's postcode+initial candidates,
  record search by postcode).
- person_identifiers: ``uq_person_identifiers_system_value`` (identity's local-id candidates, one
  id per system), ``ix_person_identifiers_value`` (record search by identifier without a system),
  ``ix_person_identifiers_person_id`` (identity's candidates' local ids, merges).

Downgrade recreates the three indexes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_sync_indexes"
down_revision: str | Sequence[str] | None = "0008_identity_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROPPED = (
    ("ix_outbox_entity_id", "outbox", ["entity_id"]),
    ("ix_entities_entity_type", "entities", ["entity_type"]),
    ("ix_person_index_postcode", "person_index", ["postcode"]),
)


def upgrade() -> None:
    """Drop the three indexes."""
    for name, table, _columns in _DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    """Recreate them."""
    for name, table, columns in _DROPPED:
        op.create_index(name, table, columns, unique=False)
