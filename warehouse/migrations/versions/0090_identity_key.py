"""identity: blocking keys as 64-bit digests in one primary key (identity_key)

The old ``identity_block`` kept each key as text in three indexes; the next resolution after
this migration is a full one (the watermark is cleared), which fills the new table.

Revision ID: identity0090_key
Revises: 0002_identity
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "identity0090_key"
down_revision = "0002_identity"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_index("ix_identity_block_part", table_name="identity_block")
    op.drop_index("ix_identity_block_record", table_name="identity_block")
    op.drop_table("identity_block")
    op.create_table(
        "identity_key",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("digest", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("record_id", ID, nullable=False, autoincrement=False),
        sa.PrimaryKeyConstraint("entity", "digest", "record_id", name=op.f("pk_identity_key")),
        sqlite_with_rowid=False,
    )
    # Without keys an incremental run would find no neighbours: the next run is a full one.
    op.execute("UPDATE identity_state SET watermark = NULL")


def downgrade() -> None:
    op.drop_table("identity_key")
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
    op.execute("UPDATE identity_state SET watermark = NULL")
