"""identity v2: records stay records (no unique 法人番号/domain, shared addresses, record keys)

Revision ID: 0010_records
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_records"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organization", recreate="auto") as b:
        b.drop_constraint("uq_organization_corporate_number", type_="unique")
        b.drop_constraint("uq_organization_domain", type_="unique")
        b.add_column(sa.Column("record_key", sa.String(length=16), nullable=True))
        b.create_unique_constraint("uq_organization_record_key", ["record_key"])
        b.create_index("ix_organization_corporate_number", ["corporate_number"], unique=False)
        b.create_index("ix_organization_domain", ["domain"], unique=False)
    with op.batch_alter_table("person", recreate="auto") as b:
        b.add_column(sa.Column("record_key", sa.String(length=16), nullable=True))
        b.create_unique_constraint("uq_person_record_key", ["record_key"])
    with op.batch_alter_table("person_email", recreate="always") as b:
        b.drop_index("ix_person_email_person_id")
        b.drop_constraint("pk_person_email", type_="primary")
        b.create_primary_key("pk_person_email", ["person_id", "email"])
        b.create_index("ix_person_email_email", ["email"], unique=False)
    with op.batch_alter_table("source_record") as b:
        b.add_column(sa.Column("locator", sa.String(length=600), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_record") as b:
        b.drop_column("locator")
    with op.batch_alter_table("person_email", recreate="always") as b:
        b.drop_index("ix_person_email_email")
        b.drop_constraint("pk_person_email", type_="primary")
        b.create_primary_key("pk_person_email", ["email"])
        b.create_index("ix_person_email_person_id", ["person_id"], unique=False)
    with op.batch_alter_table("person", recreate="auto") as b:
        b.drop_constraint("uq_person_record_key", type_="unique")
        b.drop_column("record_key")
    with op.batch_alter_table("organization", recreate="auto") as b:
        b.drop_index("ix_organization_domain")
        b.drop_index("ix_organization_corporate_number")
        b.drop_constraint("uq_organization_record_key", type_="unique")
        b.drop_column("record_key")
        b.create_unique_constraint("uq_organization_domain", ["domain"])
        b.create_unique_constraint("uq_organization_corporate_number", ["corporate_number"])
