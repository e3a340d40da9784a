"""addressing: streets, properties (BLPU), their addresses (LPI) and gazetteer loads

Revision ID: 0002_addressing
Revises: 0001_foundation
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store.tables

revision: str = "0002_addressing"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _dates(*names: str) -> list[sa.Column[object]]:
    return [sa.Column(name, sa.Date(), nullable=True) for name in names]


def upgrade() -> None:
    """Create the gazetteer's tables and their indexes."""
    op.create_table(
        "streets",
        sa.Column("usrn", _ID, autoincrement=False, nullable=False),
        sa.Column("record_type", sa.Integer(), nullable=True),
        sa.Column("swa_org_ref_naming", sa.Integer(), nullable=True),
        sa.Column("state", sa.Integer(), nullable=True),
        sa.Column("state_date", sa.Date(), nullable=True),
        sa.Column("street_surface", sa.Integer(), nullable=True),
        sa.Column("street_classification", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        *_dates("record_entry_date", "last_update_date", "start_date", "end_date"),
        sa.Column("start_x", sa.Float(), nullable=True),
        sa.Column("start_y", sa.Float(), nullable=True),
        sa.Column("end_x", sa.Float(), nullable=True),
        sa.Column("end_y", sa.Float(), nullable=True),
        sa.Column("tolerance", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("usrn", name=op.f("pk_streets")),
    )
    op.create_table(
        "street_descriptors",
        sa.Column("usrn", _ID, autoincrement=False, nullable=False),
        sa.Column("language", sa.String(length=3), nullable=False),
        sa.Column("descriptor", sa.String(length=100), nullable=False),
        sa.Column("locality", sa.String(length=35), nullable=True),
        sa.Column("town", sa.String(length=30), nullable=True),
        sa.Column("administrative_area", sa.String(length=30), nullable=True),
        sa.PrimaryKeyConstraint("usrn", "language", name=op.f("pk_street_descriptors")),
    )
    op.create_table(
        "properties",
        sa.Column("uprn", _ID, autoincrement=False, nullable=False),
        sa.Column("logical_status", sa.Integer(), nullable=False),
        sa.Column("blpu_state", sa.Integer(), nullable=True),
        sa.Column("blpu_state_date", sa.Date(), nullable=True),
        sa.Column("blpu_class", sa.String(length=6), nullable=True),
        sa.Column("parent_uprn", sa.BigInteger(), nullable=True),
        sa.Column("x_coordinate", sa.Float(), nullable=True),
        sa.Column("y_coordinate", sa.Float(), nullable=True),
        sa.Column("rpc", sa.Integer(), nullable=True),
        sa.Column("local_custodian_code", sa.Integer(), nullable=True),
        *_dates("start_date", "end_date", "last_update_date", "entry_date"),
        sa.Column("organisation", sa.String(length=100), nullable=True),
        sa.Column("ward_code", sa.String(length=10), nullable=True),
        sa.Column("parish_code", sa.String(length=10), nullable=True),
        sa.Column("custodian_one", sa.Integer(), nullable=True),
        sa.Column("custodian_two", sa.Integer(), nullable=True),
        sa.Column("can_key", sa.String(length=14), nullable=True),
        sa.PrimaryKeyConstraint("uprn", name=op.f("pk_properties")),
    )
    op.create_index("ix_properties_parent_uprn", "properties", ["parent_uprn"])
    op.create_table(
        "property_addresses",
        sa.Column("lpi_key", sa.String(length=14), nullable=False),
        sa.Column("uprn", sa.BigInteger(), nullable=False),
        sa.Column("language", sa.String(length=3), nullable=False),
        sa.Column("logical_status", sa.Integer(), nullable=False),
        *_dates("start_date", "end_date", "entry_date", "last_update_date"),
        sa.Column("sao_start_number", sa.Integer(), nullable=True),
        sa.Column("sao_start_suffix", sa.String(length=2), nullable=True),
        sa.Column("sao_end_number", sa.Integer(), nullable=True),
        sa.Column("sao_end_suffix", sa.String(length=2), nullable=True),
        sa.Column("sao_text", sa.String(length=90), nullable=True),
        sa.Column("pao_start_number", sa.Integer(), nullable=True),
        sa.Column("pao_start_suffix", sa.String(length=2), nullable=True),
        sa.Column("pao_end_number", sa.Integer(), nullable=True),
        sa.Column("pao_end_suffix", sa.String(length=2), nullable=True),
        sa.Column("pao_text", sa.String(length=90), nullable=True),
        sa.Column("usrn", sa.BigInteger(), nullable=True),
        sa.Column("level", sa.String(length=30), nullable=True),
        sa.Column("postal_address", sa.String(length=1), nullable=True),
        sa.Column("postcode", sa.String(length=8), nullable=True),
        sa.Column("post_town", sa.String(length=30), nullable=True),
        sa.Column("official_flag", sa.String(length=1), nullable=True),
        sa.Column("custodian_one", sa.Integer(), nullable=True),
        sa.Column("custodian_two", sa.Integer(), nullable=True),
        sa.Column("can_key", sa.String(length=14), nullable=True),
        sa.PrimaryKeyConstraint("lpi_key", name=op.f("pk_property_addresses")),
    )
    op.create_index("ix_property_addresses_uprn", "property_addresses", ["uprn"])
    op.create_index("ix_property_addresses_usrn", "property_addresses", ["usrn"])
    op.create_index("ix_property_addresses_postcode", "property_addresses", ["postcode"])
    op.create_table(
        "organisations",
        sa.Column("org_key", sa.String(length=14), nullable=False),
        sa.Column("uprn", sa.BigInteger(), nullable=False),
        sa.Column("organisation", sa.String(length=100), nullable=False),
        sa.Column("legal_name", sa.String(length=60), nullable=True),
        *_dates("start_date", "end_date", "last_update_date", "entry_date"),
        sa.PrimaryKeyConstraint("org_key", name=op.f("pk_organisations")),
    )
    op.create_index("ix_organisations_uprn", "organisations", ["uprn"])
    op.create_table(
        "classifications",
        sa.Column("class_key", sa.String(length=14), nullable=False),
        sa.Column("uprn", sa.BigInteger(), nullable=False),
        sa.Column("classification_code", sa.String(length=6), nullable=False),
        sa.Column("class_scheme", sa.String(length=60), nullable=True),
        sa.Column("scheme_version", sa.Float(), nullable=True),
        *_dates("start_date", "end_date", "last_update_date", "entry_date"),
        sa.PrimaryKeyConstraint("class_key", name=op.f("pk_classifications")),
    )
    op.create_index("ix_classifications_uprn", "classifications", ["uprn"])
    op.create_table(
        "successors",
        sa.Column("succ_key", sa.String(length=14), nullable=False),
        sa.Column("uprn", sa.BigInteger(), nullable=False),
        sa.Column("successor", sa.BigInteger(), nullable=False),
        *_dates("start_date", "end_date", "last_update_date", "entry_date"),
        sa.PrimaryKeyConstraint("succ_key", name=op.f("pk_successors")),
    )
    op.create_index("ix_successors_uprn", "successors", ["uprn"])
    op.create_table(
        "cross_references",
        sa.Column("xref_key", sa.String(length=14), nullable=False),
        sa.Column("uprn", sa.BigInteger(), nullable=False),
        sa.Column("cross_reference", sa.String(length=50), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=6), nullable=True),
        *_dates("start_date", "end_date", "last_update_date", "entry_date"),
        sa.PrimaryKeyConstraint("xref_key", name=op.f("pk_cross_references")),
    )
    op.create_index("ix_cross_references_uprn", "cross_references", ["uprn"])
    op.create_table(
        "gazetteer_loads",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("file_type", sa.String(length=8), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("applied_at", hub.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gazetteer_loads")),
    )
    op.create_index(op.f("ix_gazetteer_loads_sha256"), "gazetteer_loads", ["sha256"])


def downgrade() -> None:
    """Drop the gazetteer's tables."""
    op.drop_index(op.f("ix_gazetteer_loads_sha256"), table_name="gazetteer_loads")
    op.drop_table("gazetteer_loads")
    for table, indexes in (
        ("cross_references", ["ix_cross_references_uprn"]),
        ("successors", ["ix_successors_uprn"]),
        ("classifications", ["ix_classifications_uprn"]),
        ("organisations", ["ix_organisations_uprn"]),
        (
            "property_addresses",
            [
                "ix_property_addresses_postcode",
                "ix_property_addresses_usrn",
                "ix_property_addresses_uprn",
            ],
        ),
        ("properties", ["ix_properties_parent_uprn"]),
    ):
        for index in indexes:
            op.drop_index(index, table_name=table)
        op.drop_table(table)
    op.drop_table("street_descriptors")
    op.drop_table("streets")
