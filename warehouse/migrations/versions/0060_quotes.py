"""quotes: products, price lists, deal line items, quote number counters and quotes

Revision ID: 0060_quotes
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0060_quotes"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "product",
        sa.Column("id", ID, nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("tax_rate", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product")),
        sa.UniqueConstraint("code", name=op.f("uq_product_code")),
    )
    op.create_table(
        "price_list_entry",
        sa.Column("price_list", sa.String(length=100), nullable=False),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_price_list_entry_product_id_product")
        ),
        sa.PrimaryKeyConstraint("price_list", "product_id", name=op.f("pk_price_list_entry")),
    )
    op.create_table(
        "deal_line_item",
        sa.Column("id", ID, nullable=False),
        sa.Column("deal_ref", sa.String(length=500), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("product_code", sa.String(length=100), nullable=True),
        sa.Column("description", sa.String(length=400), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("tax_rate", sa.Integer(), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal_line_item")),
    )
    op.create_index(
        op.f("ix_deal_line_item_deal_ref"), "deal_line_item", ["deal_ref"], unique=False
    )
    op.create_table(
        "quote_counter",
        sa.Column("series", sa.String(length=200), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("series", name=op.f("pk_quote_counter")),
    )
    op.create_table(
        "quote",
        sa.Column("id", ID, nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("deal_id", ID, nullable=False),
        sa.Column("activity_id", ID, nullable=True),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("subtotal", sa.Numeric(precision=18, scale=0), nullable=False),
        sa.Column("tax", sa.Numeric(precision=18, scale=0), nullable=False),
        sa.Column("total", sa.Numeric(precision=18, scale=0), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("remarks", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"], ["activity.id"], name=op.f("fk_quote_activity_id_activity")
        ),
        sa.ForeignKeyConstraint(["deal_id"], ["deal.id"], name=op.f("fk_quote_deal_id_deal")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quote")),
        sa.UniqueConstraint("number", "revision", name="uq_quote_number_revision"),
    )
    op.create_index(op.f("ix_quote_deal_id"), "quote", ["deal_id"], unique=False)
    op.create_index("ix_quote_number", "quote", ["number"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_quote_number", table_name="quote")
    op.drop_index(op.f("ix_quote_deal_id"), table_name="quote")
    op.drop_table("quote")
    op.drop_table("quote_counter")
    op.drop_index(op.f("ix_deal_line_item_deal_ref"), table_name="deal_line_item")
    op.drop_table("deal_line_item")
    op.drop_table("price_list_entry")
    op.drop_table("product")
