"""The audit log page (admins): who signed in, viewed or changed what, newest first."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flows.web.auth import db, signed_in
from flows.web.render import page
from warehouse.access import audit
from warehouse.access.scope import Viewer


@signed_in("admin")
async def audit_page(request: Request, viewer: Viewer) -> Response:
    rows: list[dict[str, Any]] = await db(request, lambda conn: audit.recent(conn, 200))
    return page(request, "audit.html.j2", rows=rows)


ROUTES = [Route("/admin/audit", audit_page)]
