"""The ``lease`` table: who is doing which unit of work right now, and until when; and the
``rate_budget`` table: how much of an API account's quota is left, across processes.

One row per unit (``stream:crm/Contact``, ``identity``, ``campaign:spring``). The holder
renews ``expires_at`` while it works; a row whose time ran out (or whose process is gone from
this host) may be taken over, and only then is its unfinished work "in doubt".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema import Base, UTCDateTime


class Lease(Base):
    __tablename__ = "lease"
    unit: Mapped[str] = mapped_column(String(300), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    """A token per acquisition (not per process), so two holders are never confused."""
    run_id: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RateBudget(Base):
    """One API account's request quota, shared by every process writing to this warehouse.

    A token bucket kept as (tokens, stamp): refilled at the account's rate since ``stamp``,
    taken from in one write transaction (``warehouse.budget``).
    """

    __tablename__ = "rate_budget"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    stamp: Mapped[datetime] = mapped_column(UTCDateTime())
