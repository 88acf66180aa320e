"""日報 as a viewer may see them: one's own draft to edit and submit, and for a manager the
submitted reports of the staff their scope covers, with comments.

Whose reports a viewer reads is ``scope.staff``: a rep with the ``own`` rule sees their own,
a manager with ``team`` their team's, ``all`` everyone's. Comments need the manager role and
a report the viewer may read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, desc, select

from kizuna.errors import ConfigError
from warehouse import schema as t
from warehouse.access import scope
from warehouse.access.schema import ReportComment
from warehouse.access.scope import Viewer
from warehouse.reporting import drafts
from warehouse.reporting.schema import DailyReport
from warehouse.reporting.stages import stage_order
from warehouse.state import now

MAX_BODY = 20000
MAX_COMMENT = 2000


class ReportError(ConfigError):
    """A report action that cannot be done (nothing to submit, too long, not yours to see)."""


def own(conn: Connection, viewer: Viewer, d: date) -> drafts.Stored | None:
    if viewer.staff_id is None:
        return None
    return drafts.stored(conn, [viewer.staff_id], [d]).get((viewer.staff_id, d))


def submit(conn: Connection, viewer: Viewer, d: date, body: str) -> None:
    """Submit the viewer's own report of ``d`` with their edited text."""
    text = body.replace("\r\n", "\n")
    if len(text) > MAX_BODY:
        raise ReportError("the report is too long", fix=f"keep it under {MAX_BODY} characters")
    if viewer.staff_id is None or not drafts.submit(conn, viewer.staff_id, d, now(), text):
        raise ReportError("there is no draft for that day", fix="open today's 日報 first")


def readable(conn: Connection, viewer: Viewer, d: date) -> list[dict[str, Any]]:
    """Submitted reports of ``d`` by the staff the viewer covers, with their comments."""
    r, s = t.table(DailyReport), t.table(t.StaffUser)
    rows = [
        dict(x._mapping)
        for x in conn.execute(
            select(r.c.id, r.c.date, r.c.body_md, r.c.submitted_at, s.c.email, s.c.name)
            .join(s, s.c.id == r.c.staff_user_id)
            .where(r.c.date == d, r.c.status == "submitted", scope.staff(viewer))
            .order_by(s.c.email)
        )
    ]
    by_report = comments(conn, [x["id"] for x in rows])
    for x in rows:
        x["comments"] = by_report.get(x["id"], [])
    return rows


def comments(conn: Connection, report_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    if not report_ids:
        return {}
    c, s = t.table(ReportComment), t.table(t.StaffUser)
    out: dict[int, list[dict[str, Any]]] = {}
    for x in conn.execute(
        select(c.c.daily_report_id, c.c.body, c.c.created_at, s.c.name, s.c.email)
        .join(s, s.c.id == c.c.staff_user_id)
        .where(c.c.daily_report_id.in_(report_ids))
        .order_by(c.c.created_at, c.c.id)
    ):
        out.setdefault(int(x.daily_report_id), []).append(dict(x._mapping))
    return out


def comment(conn: Connection, viewer: Viewer, report_id: int, body: str) -> date:
    """A manager's comment on a submitted report they may read; returns the report's day."""
    text = body.replace("\r\n", "\n").strip()
    if not text or len(text) > MAX_COMMENT:
        raise ReportError("a comment needs some text", fix=f"1 to {MAX_COMMENT} characters")
    r, s = t.table(DailyReport), t.table(t.StaffUser)
    day = conn.execute(
        select(r.c.date)
        .join(s, s.c.id == r.c.staff_user_id)
        .where(r.c.id == report_id, r.c.status == "submitted", scope.staff(viewer))
    ).scalar()
    if day is None or viewer.staff_id is None or not viewer.at_least("manager"):
        raise ReportError("no such report", fix="open it from the team's reports")
    conn.execute(
        t.table(ReportComment)
        .insert()
        .values(
            daily_report_id=report_id, staff_user_id=viewer.staff_id, body=text, created_at=now()
        )
    )
    return day  # type: ignore[no-any-return]


def own_comments(conn: Connection, viewer: Viewer, d: date) -> list[dict[str, Any]]:
    """Comments on the viewer's own report of ``d``."""
    mine = own(conn, viewer, d)
    if mine is None or viewer.staff_id is None:
        return []
    r = t.table(DailyReport)
    rid = conn.execute(
        select(r.c.id).where(r.c.staff_user_id == viewer.staff_id, r.c.date == d)
    ).scalar()
    return comments(conn, [int(rid)]).get(int(rid), []) if rid is not None else []


def recent_days(conn: Connection, viewer: Viewer, limit: int = 14) -> list[date]:
    """Days with submitted reports the viewer may read, newest first."""
    r, s = t.table(DailyReport), t.table(t.StaffUser)
    q = (
        select(r.c.date)
        .join(s, s.c.id == r.c.staff_user_id)
        .where(r.c.status == "submitted", scope.staff(viewer))
        .group_by(r.c.date)
        .order_by(desc(r.c.date))
        .limit(limit)
    )
    return [d for (d,) in conn.execute(q)]


def pipeline_owners(
    conn: Connection, viewer: Viewer, team: str | None = None, owner: int | None = None
) -> list[int] | None:
    """Whose deals the viewer's pipeline counts: their scope, narrowed to one team or owner
    (None: everyone's, unowned deals included, which only the ``all`` rule gives)."""
    base = viewer.owners
    if team:
        tm, s = t.table(t.Team), t.table(t.StaffUser)
        members = set(
            conn.execute(select(s.c.id).join(tm, tm.c.id == s.c.team_id).where(tm.c.name == team))
            .scalars()
            .all()
        )
        base = frozenset(members) if base is None else base & members
    if owner is not None:
        base = frozenset({owner}) if base is None else base & {owner}
    return None if base is None else sorted(base)


def pipeline_stages(conn: Connection, viewer: Viewer, configured: Sequence[str] = ()) -> list[str]:
    """The stages the viewer may filter the pipeline by: the configured ones, and those the
    viewer's open deals are in, in the report's stage order (no other team's stage names)."""
    d = t.table(t.Deal).c
    used = set(
        conn.execute(
            select(d.stage)
            .where(d.status == "open", d.stage.is_not(None), scope.deals(viewer))
            .group_by(d.stage)
        ).scalars()
    )
    return [x for x in stage_order(conn, configured) if x in used or x in configured]


def pipeline_choices(conn: Connection, viewer: Viewer) -> tuple[list[str], list[dict[str, Any]]]:
    """Teams and staff the viewer may filter the pipeline by."""
    tm, s = t.table(t.Team), t.table(t.StaffUser)
    staff = [
        dict(r._mapping)
        for r in conn.execute(
            select(s.c.id, s.c.email, s.c.name, tm.c.name.label("team"))
            .outerjoin(tm, tm.c.id == s.c.team_id)
            .where(scope.staff(viewer))
            .order_by(s.c.email)
        )
    ]
    teams = sorted({x["team"] for x in staff if x["team"]})
    return teams, staff
