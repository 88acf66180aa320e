"""web: a manager's comments on submitted daily reports

Revision ID: web0071_report_comments
Revises: web0070_access
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "web0071_report_comments"
down_revision = "web0070_access"
branch_labels = None
depends_on = "0002_reports"  # the daily_report table is made there

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "daily_report_comment",
        sa.Column("id", ID, nullable=False),
        sa.Column("daily_report_id", ID, nullable=False),
        sa.Column("staff_user_id", ID, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["daily_report_id"],
            ["daily_report.id"],
            name=op.f("fk_daily_report_comment_daily_report_id_daily_report"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_user.id"],
            name=op.f("fk_daily_report_comment_staff_user_id_staff_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_report_comment")),
    )
    op.create_index(
        op.f("ix_daily_report_comment_daily_report_id"),
        "daily_report_comment",
        ["daily_report_id"],
    )


def downgrade() -> None:
    op.drop_table("daily_report_comment")
