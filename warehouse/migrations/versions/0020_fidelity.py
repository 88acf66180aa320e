"""fidelity: quarantine entries keyed by content with the file to fix; activity timeline and body

Revision ID: 0020_fidelity
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_fidelity"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_key", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("path", sa.String(length=1000), nullable=True))
        batch_op.create_index(
            "uq_quarantine_row_key", ["connector", "stream", "row_key"], unique=True
        )
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("timeline", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(sa.Column("body", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.drop_column("body")
        batch_op.drop_column("timeline")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index("uq_quarantine_row_key")
        batch_op.drop_column("path")
        batch_op.drop_column("row_key")
