"""flow_run: history of flow runs made without a Prefect server

Revision ID: 0040_flow_runs
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0040_flow_runs"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "flow_run",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("flow", sa.String(length=100), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_run")),
    )
    op.create_index("ix_flow_run_flow_started", "flow_run", ["flow", "started_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_flow_run_flow_started", table_name="flow_run")
    op.drop_table("flow_run")
