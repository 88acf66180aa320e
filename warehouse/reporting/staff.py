"""Who a daily report is for: staff and teams, read back from the warehouse.

Kept apart from ``warehouse.reporting.daily`` (what one rep did on one day) because these
queries choose the reps and days a run covers: staff with activity on a day, staff by id or
e-mail, team members, each rep's latest active day. They read the same tables the day does
and reuse its names and liveness rule, but never the day itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, exists, func, or_, select

from warehouse import schema as t
from warehouse.reporting.daily import IN_CHUNK, display_names, live_activity
from warehouse.reporting.model import Day, Staff, day_window, utc


def _real_changes(h: Any, start: datetime, end: datetime) -> Any:
    """Stage-history rows in [start, end) that are changes, not a deal's first row."""
    h2 = t.table(t.DealStageHistory).alias("h2")
    earlier = exists().where(
        h2.c.deal_id == h.c.deal_id,
        or_(
            h2.c.entered_at < h.c.entered_at,
            and_(h2.c.entered_at == h.c.entered_at, h2.c.id < h.c.id),
        ),
    )
    return and_(h.c.entered_at >= start, h.c.entered_at < end, earlier)


def staff_with_activity(conn: Connection, day: Day) -> list[Staff]:
    """Staff who took part in a mail or meeting that day, or moved one of their deals."""
    a = t.table(t.Activity)
    ap = t.table(t.ActivityParticipant)
    h = t.table(t.DealStageHistory)
    d = t.table(t.Deal)
    by_activity = (
        select(ap.c.staff_user_id)
        .join(a, a.c.id == ap.c.activity_id)
        .where(
            ap.c.staff_user_id.is_not(None),
            a.c.occurred_at >= day.start,
            a.c.occurred_at < day.end,
            live_activity(a),
        )
    )
    by_deal = (
        select(d.c.owner_id)
        .join(h, h.c.deal_id == d.c.id)
        .where(d.c.owner_id.is_not(None), _real_changes(h, day.start, day.end))
    )
    ids = {r for (r,) in conn.execute(by_activity.union(by_deal))}
    return staff_by_ids(conn, ids)


def staff_by_ids(conn: Connection, ids: Iterable[int]) -> list[Staff]:
    s = t.table(t.StaffUser)
    out: list[Staff] = []
    wanted = sorted(set(ids))
    for i in range(0, len(wanted), IN_CHUNK):
        rows = conn.execute(
            select(s.c.id, s.c.email, s.c.name).where(s.c.id.in_(wanted[i : i + IN_CHUNK]))
        )
        out.extend(Staff(r.id, r.email, r.name) for r in rows)
    names = display_names(conn, [x.id for x in out if not x.name])
    out = [Staff(x.id, x.email, x.name or names.get(x.id)) for x in out]
    return sorted(out, key=lambda x: x.email)


def staff_by_email(conn: Connection, email: str) -> Staff | None:
    s = t.table(t.StaffUser)
    row = conn.execute(
        select(s.c.id, s.c.email, s.c.name).where(func.lower(s.c.email) == email.strip().lower())
    ).first()
    if row is None:
        return None
    return Staff(row.id, row.email, row.name or display_names(conn, [row.id]).get(row.id))


def team_members(conn: Connection, team: str) -> list[int] | None:
    """Staff ids of the team called ``team``; None when there is no such team."""
    tm = t.table(t.Team)
    s = t.table(t.StaffUser)
    tid = conn.execute(select(tm.c.id).where(tm.c.name == team)).scalar()
    if tid is None:
        return None
    return [i for (i,) in conn.execute(select(s.c.id).where(s.c.team_id == tid).order_by(s.c.id))]


def team_names(conn: Connection) -> list[str]:
    tm = t.table(t.Team)
    return [n for (n,) in conn.execute(select(tm.c.name).order_by(tm.c.name))]


def latest_activity_days(
    conn: Connection, tz: str, on_or_before: date, staff_ids: Sequence[int] | None = None
) -> dict[int, date]:
    """Each staff user's latest day (in ``tz``) with a mail or meeting, up to ``on_or_before``."""
    a = t.table(t.Activity)
    ap = t.table(t.ActivityParticipant)
    end = day_window(on_or_before, tz).end
    q = (
        select(ap.c.staff_user_id, func.max(a.c.occurred_at))
        .join(a, a.c.id == ap.c.activity_id)
        .where(ap.c.staff_user_id.is_not(None), a.c.occurred_at < end, live_activity(a))
        .group_by(ap.c.staff_user_id)
    )
    if staff_ids is not None:
        q = q.where(ap.c.staff_user_id.in_(list(staff_ids)))
    zone = ZoneInfo(tz)
    return {sid: utc(ts).astimezone(zone).date() for sid, ts in conn.execute(q) if ts is not None}
