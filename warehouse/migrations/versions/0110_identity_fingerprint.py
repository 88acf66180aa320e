"""identity: each person row's stored features carry a 64-bit fingerprint of their text

A full run finds the rows whose features changed by comparing one integer per row instead
of each row's text. Person features and keys written before this revision are deleted and
the watermark cleared: the next resolution is a full one, which writes them all again,
fingerprints included.

Revision ID: identity0110_fingerprint
Revises: identity0100_mix
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "identity0110_fingerprint"
down_revision = "identity0100_mix"
branch_labels = None
depends_on = None


def _rebuild() -> None:
    op.execute("DELETE FROM identity_key WHERE entity = 'person'")
    op.execute("DELETE FROM identity_feature WHERE entity = 'person'")
    op.execute("UPDATE identity_state SET watermark = NULL WHERE entity = 'person'")


def upgrade() -> None:
    op.add_column("identity_feature", sa.Column("fingerprint", sa.BigInteger(), nullable=True))
    _rebuild()


def downgrade() -> None:
    _rebuild()
    with op.batch_alter_table("identity_feature") as batch:
        batch.drop_column("fingerprint")
