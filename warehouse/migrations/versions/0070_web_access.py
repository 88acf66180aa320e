"""web access: staff accounts, the scope rule per role, the audit log

Revision ID: web0070_access
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "web0070_access"
down_revision = "0001"  # staff_user is made there
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_account",
        sa.Column("staff_user_id", ID, nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("password_changed_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_user.id"],
            name=op.f("fk_staff_account_staff_user_id_staff_user"),
        ),
        sa.PrimaryKeyConstraint("staff_user_id", name=op.f("pk_staff_account")),
    )
    op.create_table(
        "role_scope",
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_role_scope")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("staff_user_id", ID, nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_user_id"], ["staff_user.id"], name=op.f("fk_audit_log_staff_user_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_staff", "audit_log", ["staff_user_id", "at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("role_scope")
    op.drop_table("staff_account")
