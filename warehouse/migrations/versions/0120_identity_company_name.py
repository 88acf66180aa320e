"""identity: company names' comparable parts kept from run to run

Every run read each company name its people name again (a dictionary reading each, the
costliest value of the feature pass). ``identity_company_name`` keeps each name's parts by a
digest of the name; the next run fills it.

Revision ID: identity0120_company_name
Revises: identity0110_fingerprint
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "identity0120_company_name"
down_revision = "identity0110_fingerprint"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_company_name",
        sa.Column("digest", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("parts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_identity_company_name")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("identity_company_name")
