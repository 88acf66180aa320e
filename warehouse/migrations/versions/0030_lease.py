"""leases for units of work; shared rate budgets

Revision ID: 0030_lease
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030_lease"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lease",
        sa.Column("unit", sa.String(length=300), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("unit", name=op.f("pk_lease")),
    )
    op.create_index(op.f("ix_lease_owner"), "lease", ["owner"], unique=False)
    op.create_table(
        "rate_budget",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("stamp", TS, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_budget")),
    )


def downgrade() -> None:
    op.drop_table("rate_budget")
    op.drop_index(op.f("ix_lease_owner"), table_name="lease")
    op.drop_table("lease")
