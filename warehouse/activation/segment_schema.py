"""Segment membership snapshots: who entered and left a segment, and when.

A person has at most one open row (``exited_at`` NULL) per segment; leaving closes it and
coming back opens a new one, so the history of every membership is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.activation.audience import utc
from warehouse.schema import Base, Id, UTCDateTime
from warehouse.write.upsert import chunks


class SegmentMembership(Base):
    __tablename__ = "segment_membership"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    segment: Mapped[str] = mapped_column(String(100))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_segment_membership_open", "segment", "exited_at"),)


@dataclass(frozen=True)
class SnapshotResult:
    members: int
    entered: int
    exited: int


def current_members(conn: Connection, segment: str) -> set[int]:
    m = SegmentMembership
    q = select(m.person_id).where(m.segment == segment, m.exited_at.is_(None))
    return {int(x) for x in conn.execute(q).scalars()}


def snapshot(
    conn: Connection, segment: str, member_ids: Iterable[int], at: datetime
) -> SnapshotResult:
    """Record today's members: open rows for newcomers, close rows for those who left."""
    now = set(member_ids)
    before = current_members(conn, segment)
    entered = sorted(now - before)
    exited = sorted(before - now)
    ts = utc(at)
    m = SegmentMembership
    if entered:
        conn.execute(
            insert(m),
            [{"segment": segment, "person_id": pid, "entered_at": ts} for pid in entered],
        )
    for part in chunks(exited, 900):
        conn.execute(
            update(m)
            .where(m.segment == segment, m.exited_at.is_(None), m.person_id.in_(part))
            .values(exited_at=ts)
        )
    return SnapshotResult(members=len(now), entered=len(entered), exited=len(exited))


def entered_since(conn: Connection, segment: str, since: datetime) -> set[int]:
    m = SegmentMembership
    q = select(m.person_id).where(
        m.segment == segment, m.exited_at.is_(None), m.entered_at >= utc(since)
    )
    return {int(x) for x in conn.execute(q).scalars()}
