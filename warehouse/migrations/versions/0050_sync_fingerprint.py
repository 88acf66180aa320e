"""sync_state.fingerprint: the mapping and options a stream's rows were made with

Revision ID: 0050_sync_fingerprint
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0050_sync_fingerprint"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_state") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_state") as batch:
        batch.drop_column("fingerprint")
