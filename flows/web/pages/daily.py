"""日報 in the browser: today's draft edited in place and submitted by the rep; the reports
the manager's scope covers, read and commented on.

The draft is the one ``kizuna report daily`` makes (``flows.reports.run.draft_batch``: the
same text, file and row), made on first opening when the scheduled run has not made it yet.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from flows.reports.run import draft_batch, today_in
from flows.web.auth import db, form, signed_in
from flows.web.render import page
from kizuna.errors import KizunaError
from warehouse.access import audit, reports
from warehouse.access.scope import Viewer


def _day(request: Request, raw: str | None) -> date:
    today = today_in(request.app.state.ws) if request.app.state.ws else date.today()
    if not raw:
        return today
    try:
        d = date.fromisoformat(raw[:10])
    except ValueError:
        raise HTTPException(400, "dates look like 2026-12-03") from None
    if d > today:
        raise HTTPException(400, "a 日報 is written on or after its day")
    return d


@signed_in()
async def mine(request: Request, viewer: Viewer) -> Response:
    d = _day(request, request.query_params.get("date"))
    got = await db(request, reports.own, viewer, d)
    ws = request.app.state.ws
    if got is None and ws is not None and viewer.staff_id is not None:
        await run_in_threadpool(draft_batch, ws, [(viewer.staff_id, d.isoformat())])
        got = await db(request, reports.own, viewer, d)
    notes = await db(request, reports.own_comments, viewer, d)
    return page(
        request,
        "daily.html.j2",
        day=d,
        report=got,
        comments=notes,
        done=request.query_params.get("done", "")[:200],
        error=request.query_params.get("error", "")[:300],
    )


@signed_in()
async def submit(request: Request, viewer: Viewer) -> Response:
    data = await form(request)
    d = _day(request, str(data.get("date") or ""))
    body = str(data.get("body") or "")

    def run(conn: Any) -> None:
        reports.submit(conn, viewer, d, body)
        audit.record(conn, viewer, "daily-submit", f"日報 {d.isoformat()}")

    try:
        await db(request, run, write=True)
    except KizunaError as exc:
        return RedirectResponse(f"/daily?date={d}&error={quote(str(exc))}", status_code=303)
    return RedirectResponse(f"/daily?date={d}&done=submitted", status_code=303)


@signed_in("manager")
async def team(request: Request, viewer: Viewer) -> Response:
    raw = request.query_params.get("date")

    def run(conn: Any) -> tuple[date | None, list[date], list[dict[str, Any]]]:
        days = reports.recent_days(conn, viewer)
        d = _day(request, raw) if raw else (days[0] if days else None)
        rows = reports.readable(conn, viewer, d) if d else []
        audit.record(conn, viewer, "view", "日報 team", d.isoformat() if d else None)
        return d, days, rows

    d, days, rows = await db(request, run, write=True)
    return page(request, "daily_team.html.j2", day=d, days=days, rows=rows)


@signed_in("manager")
async def comment(request: Request, viewer: Viewer) -> Response:
    rid = request.path_params["rid"]
    data = await form(request)
    text = str(data.get("text") or "")

    def run(conn: Any) -> date:
        d = reports.comment(conn, viewer, rid, text)
        audit.record(conn, viewer, "daily-comment", f"日報 report {rid}")
        return d

    try:
        d = await db(request, run, write=True)
    except KizunaError as exc:
        raise HTTPException(404, str(exc)) from None
    return RedirectResponse(f"/daily/team?date={d}", status_code=303)


ROUTES = [
    Route("/daily", mine),
    Route("/daily/submit", submit, methods=["POST"]),
    Route("/daily/team", team),
    Route("/daily/comment/{rid:int}", comment, methods=["POST"]),
]
