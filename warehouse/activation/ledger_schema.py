"""The push side's ledgers: campaign plans (the approval gate), deliveries and reminders.

``delivery`` is what makes sends exactly once: its (campaign, person, step) row is committed
as ``pending`` before the channel is touched and marked ``sent`` after, so a crash leaves at
most an in-doubt row that recovery resolves by asking the channel for the Message-ID.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema import Base, Id, Json, UTCDateTime


class CampaignPlan(Base):
    """One dry run: the list of who gets what, which a real run then executes as is."""

    __tablename__ = "campaign_plan"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20))  # planned | running | done | superseded
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    config_hash: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    counts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class PlanEntry(Base):
    """One line of a plan: send to this person (step) or skip them, and what then happened."""

    __tablename__ = "campaign_plan_entry"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("campaign_plan.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    step: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))  # send | skip
    reason: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(320))
    outcome: Mapped[str | None] = mapped_column(String(20))
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    __table_args__ = (UniqueConstraint("plan_id", "person_id", "step", name="uq_plan_entry_key"),)


class Delivery(Base):
    """One outbound message per campaign × person × step, ever."""

    __tablename__ = "delivery"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(100))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(20))  # pending | sent | failed
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_plan.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        UniqueConstraint("campaign", "person_id", "step", name="uq_delivery_key"),
        Index("ix_delivery_person_sent", "person_id", "sent_at"),
    )


class Reminder(Base):
    """One reminder per rule × subject × condition instance; resolved when the condition clears."""

    __tablename__ = "reminder"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    rule: Mapped[str] = mapped_column(String(100))
    subject_kind: Mapped[str] = mapped_column(String(20))  # deal | activity | organization
    subject_id: Mapped[int] = mapped_column(Id)
    instance: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    status: Mapped[str] = mapped_column(String(20))  # open | resolved
    title: Mapped[str] = mapped_column(Text)
    facts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    delivery: Mapped[str] = mapped_column(String(20))  # pending | sent | no_owner
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    digest_id: Mapped[str | None] = mapped_column(String(300))
    """The Message-ID of the digest this reminder went out in (one mail per rep per day)."""
    __table_args__ = (
        UniqueConstraint("rule", "subject_kind", "subject_id", "instance", name="uq_reminder_key"),
        Index("ix_reminder_open", "rule", "status"),
    )
