"""My day (the page after sign-in): today's and the next business day's meetings, follow-ups
due, open reminders and stale deals of the signed-in person."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flows.reports.config import reports_config
from flows.reports.run import today_in
from flows.web.auth import db, signed_in
from flows.web.render import page
from warehouse.access import day
from warehouse.access.scope import Viewer


@signed_in()
async def my_day(request: Request, viewer: Viewer) -> Response:
    ws = request.app.state.ws
    zone = request.app.state.zone
    from datetime import date

    today = today_in(ws) if ws is not None else date.today()
    stale = reports_config(ws).stale_days if ws is not None else 14
    got = await db(request, day.my_day, viewer, today, zone, stale)
    return page(request, "home.html.j2", d=got, today=today)


ROUTES = [Route("/today", my_day)]
