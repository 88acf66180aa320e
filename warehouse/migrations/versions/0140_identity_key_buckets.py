"""identity: the blocking keys kept in buckets (a row per bucket of digests, its pairs packed)

A row per key cost a first run's index writer 13 s of B-tree inserts and 28 bytes a key at a
million people; a row per bucket of digests (``linkage.key_table``) is written in 2 s at 16
bytes a key. The keys are not converted: the table is made anew, the delta emptied and the
watermarks cleared, so the next resolution is a full one, which writes every key again.

Revision ID: identity0140_key_buckets
Revises: identity0130_key_delta
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "identity0140_key_buckets"
down_revision = "identity0130_key_delta"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _rebuild() -> None:
    op.execute("DELETE FROM identity_key_delta")
    op.execute("UPDATE identity_state SET watermark = NULL")


def upgrade() -> None:
    op.drop_table("identity_key")
    op.create_table(
        "identity_key",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pairs", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "bucket", name=op.f("pk_identity_key")),
        sqlite_with_rowid=False,
    )
    _rebuild()


def downgrade() -> None:
    op.drop_table("identity_key")
    op.create_table(
        "identity_key",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("digest", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("record_id", ID, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("entity", "digest", "record_id", name=op.f("pk_identity_key")),
        sqlite_with_rowid=False,
    )
    _rebuild()
