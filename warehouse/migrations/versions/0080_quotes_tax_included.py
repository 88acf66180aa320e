"""quotes: tax-included (税込) prices in price lists and deal lines

Revision ID: quotes0080_tax_included
Revises: 0060_quotes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "quotes0080_tax_included"
down_revision = "0060_quotes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("price_list_entry") as b:
        b.add_column(
            sa.Column("tax_included", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("deal_line_item") as b:
        b.add_column(sa.Column("tax_included", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deal_line_item") as b:
        b.drop_column("tax_included")
    with op.batch_alter_table("price_list_entry") as b:
        b.drop_column("tax_included")
