"""Customer pages: the list with search, the 360 view, and notes the team shares (情報共有).

Every read goes through ``warehouse.access`` with the signed-in viewer, so a customer outside
the viewer's scope answers 404 exactly like one that does not exist (an id typed into the
address bar tells nothing). Opening a 360 and saving a note are written to the audit log.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flows.web.auth import db, form, signed_in
from flows.web.render import page
from kizuna.errors import KizunaError
from warehouse.access import audit, customers, notes
from warehouse.access.scope import Viewer

PAGE = 50


@signed_in()
async def listing(request: Request, viewer: Viewer) -> Response:
    q = request.query_params.get("q", "")[: customers.MAX_QUERY]
    try:
        offset = max(0, int(request.query_params.get("from", "0")))
    except ValueError:
        offset = 0

    def run(conn: Any) -> list[customers.CustomerRow]:
        rows = customers.search(conn, viewer, q, limit=PAGE + 1, offset=offset)
        if q:
            audit.record(conn, viewer, "search", "customers", f"{q!r}: {len(rows)} found")
        return rows

    rows = await db(request, run, write=bool(q))
    return page(
        request,
        "customers.html.j2",
        q=q,
        rows=rows[:PAGE],
        more=len(rows) > PAGE,
        offset=offset,
        page_size=PAGE,
    )


def _cid(request: Request) -> int:
    cid = request.path_params["cid"]
    assert isinstance(cid, int)
    return cid


@signed_in()
async def show(request: Request, viewer: Viewer) -> Response:
    cid = _cid(request)
    state = request.app.state

    def run(conn: Any) -> Any:
        got = customers.view(conn, viewer, cid, state.rules, state.phone_region)
        if got is None:
            audit.record(conn, viewer, "view-refused", f"customer {cid}")
            return None
        audit.record(conn, viewer, "view", f"customer {cid}")
        return got, notes.for_customer(conn, viewer, got[0].members)

    got = await db(request, run, write=True)
    if got is None:
        raise HTTPException(404, "no such customer")
    (view, history), shared = got
    return page(
        request,
        "customer.html.j2",
        c=view,
        history=history,
        notes=shared,
        error=request.query_params.get("error"),
    )


@signed_in()
async def add_note(request: Request, viewer: Viewer) -> Response:
    cid = _cid(request)
    data = await form(request)
    text = str(data.get("text") or "")

    def run(conn: Any) -> str | None:
        try:
            aid = notes.add(conn, viewer, cid, text)
        except KizunaError as exc:
            return str(exc)
        audit.record(conn, viewer, "note-add", f"customer {cid}", f"activity {aid}")
        return None

    err = await db(request, run, write=True)
    if err is not None and "no such customer" in err:
        raise HTTPException(404, "no such customer")
    suffix = "" if err is None else "?error=" + _q(err)
    return RedirectResponse(f"/customers/{cid}{suffix}#notes", status_code=303)


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
