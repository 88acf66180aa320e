"""My day for one signed-in person: today's and the next business day's meetings, meetings
still waiting for a follow-up, open reminders and their deals gone quiet.

It is the viewer's own day by construction (their meetings, their reminders, the deals they
own), read through the same read models as the 日報 and the pipeline, so the numbers agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, desc, select

from warehouse import schema as t
from warehouse.access.scope import Viewer
from warehouse.activation.ledger_schema import Reminder
from warehouse.reporting.daily import daily
from warehouse.reporting.model import DailyData, Staff
from warehouse.reporting.pipeline import DealLine, pipeline
from warehouse.state import now

MAX_REMINDERS = 50


@dataclass
class MyDay:
    data: DailyData | None
    reminders: list[dict[str, Any]] = field(default_factory=list)
    stale: list[DealLine] = field(default_factory=list)
    stale_days: int = 14


def my_day(conn: Connection, viewer: Viewer, today: date, tz: str, stale_days: int = 14) -> MyDay:
    if viewer.staff_id is None:
        return MyDay(None)
    me = Staff(viewer.staff_id, viewer.email, viewer.name)
    r = t.table(Reminder)
    reminders = [
        dict(x._mapping)
        for x in conn.execute(
            select(r.c.title, r.c.rule, r.c.opened_at, r.c.subject_kind, r.c.subject_id)
            .where(r.c.owner_id == viewer.staff_id, r.c.status == "open")
            .order_by(desc(r.c.opened_at), desc(r.c.id))
            .limit(MAX_REMINDERS)
        )
    ]
    p = pipeline(conn, now(), tz, stale_days=stale_days, owner_ids=[viewer.staff_id])
    return MyDay(daily(conn, me, today, tz), reminders, p.stale, stale_days)
