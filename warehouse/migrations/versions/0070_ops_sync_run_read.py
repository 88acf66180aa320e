"""sync_run.read: the source rows (messages, events, records) a stream run read

A first sync of five spreadsheet rows writes ten records (each contact and the company it
names); the summary shows the rows read beside the records written so the two are not
confused.

Revision ID: ops0070_sync_run_read
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ops0070_sync_run_read"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(sa.Column("read", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_column("read")
