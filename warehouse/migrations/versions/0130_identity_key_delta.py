"""identity: the keys an incremental run renews, kept beside identity_key (identity_key_delta)

A 1 % change rewrote most pages of ``identity_key`` (each renewed key at a random place in
it); its keys now go to ``identity_key_delta`` and a full run folds them in. Empty here: the
index stays as it is.

Revision ID: identity0130_key_delta
Revises: identity0120_company_name
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "identity0130_key_delta"
down_revision = "identity0120_company_name"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "identity_key_delta",
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("digest", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("record_id", ID, autoincrement=False, nullable=False),
        sa.Column("n", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "entity", "digest", "record_id", name=op.f("pk_identity_key_delta")
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    # The keys it holds are lost: the next resolution is a full one, which writes them all.
    op.drop_table("identity_key_delta")
    op.execute("DELETE FROM identity_key WHERE entity = 'person'")
