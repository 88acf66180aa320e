"""Flow runs the warehouse remembers: runs made without a Prefect server.

``kizuna sync`` and friends run their flow code in-process when no Prefect API is configured
(no temporary server to boot); this table is their run history, what the Prefect UI would
otherwise show. Runs on a Prefect server are recorded by Prefect, not here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema import Base, Json, UTCDateTime


class FlowRun(Base):
    __tablename__ = "flow_run"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    flow: Mapped[str] = mapped_column(String(100))
    parameters: Mapped[dict[str, Any]] = mapped_column(Json)
    """The flow's parameters (paths, names, flags: never secrets)."""
    host: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(20))  # running | completed | failed
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_flow_run_flow_started", "flow", "started_at"),)
