"""Drafted daily reports (日報): one per staff user and day.

A draft is regenerated freely until the rep marks it submitted; from then on the stored body
is the rep's own text (their 所感 included) and regeneration leaves it alone.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema import Base, Id, UTCDateTime


class DailyReport(Base):
    __tablename__ = "daily_report"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    date: Mapped[date] = mapped_column(Date)
    body_md: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(5), default="ja")
    status: Mapped[str] = mapped_column(String(10), default="draft")  # draft | submitted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    __table_args__ = (UniqueConstraint("staff_user_id", "date", name="uq_daily_report_key"),)
