"""Tables of web access: accounts of staff users, the scope rule per role, the audit log.

An account belongs to a ``staff_user`` row (staff arrive from the sources; an account only
lets one of them sign in). The scope a role sees is a row an admin sets, so the rule lives in
the warehouse next to the data it guards rather than in a file a web server reads.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema import Base, Id, UTCDateTime


class StaffAccount(Base):
    """A staff user who may sign in: the argon2 hash, the role, the lock-out counters."""

    __tablename__ = "staff_account"
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10))  # rep | manager | admin
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """Sessions signed in before this are no longer valid (a reset signs everyone out)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RoleScope(Base):
    """Which customers, deals and activities a role sees: ``own``, ``team`` or ``all``."""

    __tablename__ = "role_scope"
    role: Mapped[str] = mapped_column(String(10), primary_key=True)
    scope: Mapped[str] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditLog(Base):
    """One line per sign-in, view or change: who, when, what, on which record. Append only."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_staff", "staff_user_id", "at"),
    )


class ReportComment(Base):
    """A manager's comment on a submitted 日報 (the rep reads it under their report)."""

    __tablename__ = "daily_report_comment"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    daily_report_id: Mapped[int] = mapped_column(ForeignKey("daily_report.id"), index=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
