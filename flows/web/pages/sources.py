"""Sources (admins): each stream's status, cursor, last run and quarantine with the reason and
the file to fix, and a button that runs a sync of one source or all (the same flow as
``kizuna sync``, through the Prefect API when one answers, else in this process)."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from flows.web.auth import db, form, signed_in
from flows.web.render import page
from warehouse.access import audit, sources


@signed_in("admin")
async def status(request: Request, viewer: Any) -> Response:
    def run(conn: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return sources.streams(conn), sources.quarantine(conn)

    rows, bad = await db(request, run)
    for r in rows:
        r["cursor_text"] = json.dumps(r["cursor"], ensure_ascii=False, default=str)[:200]
    ws = request.app.state.ws
    names = sorted(ws.sources) if ws is not None else []
    done = request.query_params.get("done", "")[:300]
    return page(request, "sources.html.j2", rows=rows, bad=bad, names=names, done=done)


def _sync(ws: Any, only: list[str] | None) -> str:
    from flows.ops.launch import run_flow
    from flows.runtime import quiet_prefect
    from flows.sync import StreamsFailed, sync_workspace

    quiet_prefect(ws.root / ".kizuna" / "prefect")
    try:
        run_flow(
            sync_workspace,
            ws.warehouse_url,
            workspace_file=str(ws.path),
            sources=only,
            run_id=f"web-{uuid.uuid4().hex[:12]}",
        )
    except StreamsFailed as exc:
        return f"sync finished with {len(exc.errors)} failed stream(s): see the table"
    return "sync finished"


@signed_in("admin")
async def sync(request: Request, viewer: Any) -> Response:
    data = await form(request)
    ws = request.app.state.ws
    if ws is None:
        raise HTTPException(404, "syncing needs the workspace file (start with `kizuna web`)")
    name = str(data.get("source") or "")
    if name and name not in ws.sources:
        raise HTTPException(400, "no such source in the workspace file")
    msg = await run_in_threadpool(_sync, ws, [name] if name else None)
    await db(
        request, lambda conn: audit.record(conn, viewer, "sync", name or "all", msg), write=True
    )
    return RedirectResponse(f"/admin/sources?done={quote(msg)}", status_code=303)


ROUTES = [
    Route("/admin/sources", status),
    Route("/admin/sources/sync", sync, methods=["POST"]),
]
