"""push side: segment membership, campaign plans, delivery ledger, reminders

Revision ID: 0006_push
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_push"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "segment_membership",
        sa.Column("id", ID, nullable=False),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("person_id", ID, nullable=False),
        sa.Column("entered_at", TS, nullable=False),
        sa.Column("exited_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_segment_membership_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_membership")),
    )
    op.create_index(
        "ix_segment_membership_open", "segment_membership", ["segment", "exited_at"], unique=False
    )
    op.create_index(
        op.f("ix_segment_membership_person_id"), "segment_membership", ["person_id"], unique=False
    )

    op.create_table(
        "campaign_plan",
        sa.Column("id", ID, nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("as_of", TS, nullable=False),
        sa.Column("config_hash", sa.String(length=32), nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_plan")),
    )
    op.create_index(op.f("ix_campaign_plan_campaign"), "campaign_plan", ["campaign"], unique=False)

    op.create_table(
        "campaign_plan_entry",
        sa.Column("id", ID, nullable=False),
        sa.Column("plan_id", ID, nullable=False),
        sa.Column("person_id", ID, nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("outcome_reason", sa.Text(), nullable=True),
        sa.Column("done_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["campaign_plan.id"],
            name=op.f("fk_campaign_plan_entry_plan_id_campaign_plan"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_campaign_plan_entry_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_plan_entry")),
        sa.UniqueConstraint("plan_id", "person_id", "step", name="uq_plan_entry_key"),
    )
    op.create_index(
        op.f("ix_campaign_plan_entry_plan_id"), "campaign_plan_entry", ["plan_id"], unique=False
    )

    op.create_table(
        "delivery",
        sa.Column("id", ID, nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("person_id", ID, nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("plan_id", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_delivery_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["campaign_plan.id"], name=op.f("fk_delivery_plan_id_campaign_plan")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
        sa.UniqueConstraint("campaign", "person_id", "step", name="uq_delivery_key"),
        sa.UniqueConstraint("message_id", name=op.f("uq_delivery_message_id")),
    )
    op.create_index(op.f("ix_delivery_person_id"), "delivery", ["person_id"], unique=False)
    op.create_index("ix_delivery_person_sent", "delivery", ["person_id", "sent_at"], unique=False)

    op.create_table(
        "reminder",
        sa.Column("id", ID, nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("subject_kind", sa.String(length=20), nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("instance", sa.String(length=100), nullable=False),
        sa.Column("owner_id", ID, nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=False),
        sa.Column("delivery", sa.String(length=20), nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["staff_user.id"], name=op.f("fk_reminder_owner_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder")),
        sa.UniqueConstraint(
            "rule", "subject_kind", "subject_id", "instance", name="uq_reminder_key"
        ),
        sa.UniqueConstraint("message_id", name=op.f("uq_reminder_message_id")),
    )
    op.create_index("ix_reminder_open", "reminder", ["rule", "status"], unique=False)


def downgrade() -> None:
    op.drop_table("reminder")
    op.drop_table("delivery")
    op.drop_table("campaign_plan_entry")
    op.drop_table("campaign_plan")
    op.drop_table("segment_membership")
