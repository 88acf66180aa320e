"""identity graph: clusters, members, aliases, match evidence, pins, blocking keys

Revision ID: 0002_identity
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_identity"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "identity_cluster",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("golden", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity", "id", name=op.f("pk_identity_cluster")),
    )
    op.create_table(
        "identity_member",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("cluster_id", ID, nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity", "record_id", name=op.f("pk_identity_member")),
    )
    op.create_index("ix_identity_member_cluster", "identity_member", ["entity", "cluster_id"])
    op.create_table(
        "identity_alias",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("alias_id", ID, nullable=False),
        sa.Column("cluster_id", ID, nullable=False),
        sa.Column("match_id", ID, nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity", "alias_id", name=op.f("pk_identity_alias")),
    )
    op.create_index("ix_identity_alias_cluster", "identity_alias", ["entity", "cluster_id"])
    op.create_table(
        "identity_match",
        sa.Column("id", ID, nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("a_id", ID, nullable=False),
        sa.Column("b_id", ID, nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_match")),
    )
    op.create_index(
        "uq_identity_match_pair", "identity_match", ["entity", "a_id", "b_id"], unique=True
    )
    op.create_index("ix_identity_match_decision", "identity_match", ["entity", "decision"])
    op.create_index("ix_identity_match_b", "identity_match", ["entity", "b_id"])
    op.create_table(
        "identity_pin",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("a_id", ID, nullable=False),
        sa.Column("b_id", ID, nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity", "a_id", "b_id", name=op.f("pk_identity_pin")),
    )
    op.create_index("ix_identity_pin_b", "identity_pin", ["entity", "b_id"])
    op.create_table(
        "identity_block",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("part", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "key", "record_id", name=op.f("pk_identity_block")),
    )
    op.create_index("ix_identity_block_record", "identity_block", ["entity", "record_id"])
    op.create_index("ix_identity_block_part", "identity_block", ["entity", "part", "key"])
    op.create_table(
        "identity_feature",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "record_id", name=op.f("pk_identity_feature")),
    )
    op.create_table(
        "identity_state",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("full_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stats", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("entity", name=op.f("pk_identity_state")),
    )
    op.create_index("ix_person_updated_at", "person", ["updated_at"])
    op.create_index("ix_organization_updated_at", "organization", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_organization_updated_at", table_name="organization")
    op.drop_index("ix_person_updated_at", table_name="person")
    for name in (
        "identity_state",
        "identity_feature",
        "identity_block",
        "identity_pin",
        "identity_match",
        "identity_alias",
        "identity_member",
        "identity_cluster",
    ):
        op.drop_table(name)
