"""identity: a person's two-field block keys are digests mixed from each field's hash

Keys of one field keep their digest (BLAKE2b of the key's text); a key of two fields (a
reading with a company, a birth date with a postcode…) is now a mix of the two fields'
hashes, so a full run computes them column by column. Person keys written before this
revision are deleted and the watermark cleared: the next resolution is a full one, which
writes every key again.

Revision ID: identity0100_mix
Revises: identity0090_key
"""

from __future__ import annotations

from alembic import op

revision = "identity0100_mix"
down_revision = "identity0090_key"
branch_labels = None
depends_on = None


def _rebuild() -> None:
    op.execute("DELETE FROM identity_key WHERE entity = 'person'")
    op.execute("UPDATE identity_state SET watermark = NULL WHERE entity = 'person'")


def upgrade() -> None:
    _rebuild()


def downgrade() -> None:
    _rebuild()
