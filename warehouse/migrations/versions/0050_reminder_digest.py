"""reminder.digest_id: the digest (one mail per rep per day) a reminder went out in

Revision ID: 0050_reminder_digest
Revises: 0006_push
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0050_reminder_digest"
down_revision = "0006_push"  # the reminder table is made there
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reminder") as batch:
        batch.add_column(sa.Column("digest_id", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reminder") as batch:
        batch.drop_column("digest_id")
