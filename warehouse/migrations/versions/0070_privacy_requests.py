"""privacy requests: the salt, the request log, erased source records

Revision ID: privacy0070_requests
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "privacy0070_requests"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "privacy_salt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_salt")),
    )
    op.create_table(
        "privacy_request",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("customer_id", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_request")),
    )
    op.create_table(
        "erased_record",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["privacy_request.id"],
            name=op.f("fk_erased_record_request_id_privacy_request"),
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_erased_record")),
    )


def downgrade() -> None:
    op.drop_table("erased_record")
    op.drop_table("privacy_request")
    op.drop_table("privacy_salt")
