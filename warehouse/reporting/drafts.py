"""Storing 日報 drafts: regenerate freely, but never over what a rep has submitted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from warehouse.reporting.schema import DailyReport
from warehouse.schema import table


@dataclass(frozen=True)
class Draft:
    staff_user_id: int
    date: date
    body_md: str
    language: str = "ja"


@dataclass(frozen=True)
class Stored:
    staff_user_id: int
    date: date
    body_md: str
    status: str
    submitted_at: datetime | None


def save_drafts(conn: Connection, drafts: Sequence[Draft], now: datetime) -> set[tuple[int, date]]:
    """Insert or replace drafts in one statement per batch; returns the keys left untouched.

    The conflict update is guarded by ``status = 'draft'``, so a submitted report is kept
    even when two runs race: the database decides, not a read before the write.
    """
    if not drafts:
        return set()
    rows = {
        (x.staff_user_id, x.date): {
            "staff_user_id": x.staff_user_id,
            "date": x.date,
            "body_md": x.body_md,
            "language": x.language,
            "status": "draft",
            "created_at": now,
            "updated_at": now,
            "submitted_at": None,
        }
        for x in drafts
    }
    tbl = table(DailyReport)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(tbl)
    stmt = stmt.on_conflict_do_update(
        index_elements=["staff_user_id", "date"],
        set_={
            "body_md": stmt.excluded.body_md,
            "language": stmt.excluded.language,
            "updated_at": stmt.excluded.updated_at,
        },
        where=tbl.c.status == "draft",
    )
    conn.execute(stmt, list(rows.values()))
    kept = stored(conn, [k[0] for k in rows], [k[1] for k in rows])
    return {k for k, v in kept.items() if k in rows and v.status != "draft"}


def stored(
    conn: Connection, staff_ids: Sequence[int], dates: Sequence[date]
) -> dict[tuple[int, date], Stored]:
    """Stored reports of these staff on these dates (every combination of the two lists)."""
    r = table(DailyReport)
    out: dict[tuple[int, date], Stored] = {}
    if not staff_ids or not dates:
        return out
    q = select(r).where(
        r.c.staff_user_id.in_(sorted(set(staff_ids))), r.c.date.in_(sorted(set(dates)))
    )
    for row in conn.execute(q):
        out[(row.staff_user_id, row.date)] = Stored(
            row.staff_user_id, row.date, row.body_md, row.status, row.submitted_at
        )
    return out


def submit(
    conn: Connection, staff_user_id: int, d: date, now: datetime, body_md: str | None = None
) -> bool:
    """Mark a report submitted (optionally with the rep's edited text); False if none exists."""
    r = table(DailyReport)
    values: dict[str, object] = {"status": "submitted", "submitted_at": now, "updated_at": now}
    if body_md is not None:
        values["body_md"] = body_md
    res = conn.execute(
        update(r).where(r.c.staff_user_id == staff_user_id, r.c.date == d).values(values)
    )
    return bool(res.rowcount)
