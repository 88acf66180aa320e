"""The identity review queue (admins): pairs the resolver was unsure about, with the
evidence for and against, decided with one button: accept, reject or never-link; and the
split of a customer's records from its 360 view. Each decision goes to the audit log and is
recorded where later resolver runs read it (``warehouse.identity.admin``).
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from flows.web.auth import db, form, signed_in
from flows.web.render import page
from kizuna.errors import KizunaError
from warehouse.access import audit
from warehouse.access.scope import Viewer
from warehouse.identity import admin

DECISIONS = ("accept", "reject", "never-link")


@signed_in("admin")
async def queue(request: Request, viewer: Viewer) -> Response:
    def run(conn: Any) -> list[dict[str, Any]]:
        rows = admin.review_queue(conn, 100)
        for r in rows:
            r["pro"], r["con"] = admin.for_against(r["fields"] or {})
        return rows

    rows = await db(request, run)
    done = request.query_params.get("done", "")[:200]
    return page(request, "review.html.j2", rows=rows, done=done)


@signed_in("admin")
async def decide(request: Request, viewer: Viewer) -> Response:
    match_id = request.path_params["mid"]
    data = await form(request)
    what = str(data.get("decision") or "")
    if what not in DECISIONS:
        raise HTTPException(400, "choose accept, reject or never-link")
    rules = request.app.state.rules

    def run(conn: Any) -> str:
        if what == "accept":
            cid = admin.accept(conn, match_id, viewer.email, rules)
            msg = f"match {match_id} accepted: now customer {cid}"
        elif what == "reject":
            admin.reject(conn, match_id, viewer.email, rules)
            msg = f"match {match_id} rejected: the two stay apart"
        else:
            pair = [r for r in admin.review_queue(conn, 1000) if r["id"] == match_id]
            if not pair:
                raise HTTPException(404, "no such pair in the queue")
            admin.reject(conn, match_id, viewer.email, rules)  # leaves the queue
            admin.never_link(conn, pair[0]["a_id"], pair[0]["b_id"], f"by {viewer.email}", rules)
            msg = f"records {pair[0]['a_id']} and {pair[0]['b_id']} will never be linked"
        audit.record(conn, viewer, f"review-{what}", f"match {match_id}", msg)
        return msg

    try:
        msg = await db(request, run, write=True)
    except KizunaError as exc:
        raise HTTPException(404, str(exc)) from None
    from urllib.parse import quote

    return RedirectResponse(f"/review?done={quote(msg)}", status_code=303)


@signed_in("admin")
async def split(request: Request, viewer: Viewer) -> Response:
    cid = request.path_params["cid"]
    data = await form(request)
    try:
        out = sorted({int(str(v)) for v in data.getlist("record") if str(v).isdigit()})[:1000]
    except ValueError:
        out = []
    if not out:
        raise HTTPException(400, "tick the records to move out")
    rules = request.app.state.rules

    def run(conn: Any) -> int:
        new = admin.split(conn, cid, out, f"by {viewer.email}", rules)
        audit.record(conn, viewer, "identity-split", f"customer {cid}", f"records {out} → {new}")
        return int(new)

    try:
        new = await db(request, run, write=True)
    except KizunaError as exc:
        raise HTTPException(400, str(exc)) from None
    return RedirectResponse(f"/customers/{new}", status_code=303)


ROUTES = [
    Route("/review", queue),
    Route("/review/{mid:int}", decide, methods=["POST"]),
    Route("/customers/{cid:int}/split", split, methods=["POST"]),
]
