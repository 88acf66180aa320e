"""identity: name parts' dictionary readings kept by digest (identity_reading)

Empty here: the next resolution reads the parts it meets and keeps their readings.

Revision ID: identity0150_reading
Revises: identity0140_key_buckets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "identity0150_reading"
down_revision = "identity0140_key_buckets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_reading",
        sa.Column("digest", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_identity_reading")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("identity_reading")
