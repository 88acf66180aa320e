"""見積書 from the customer view: a button on each deal issues a quote (the same as
``kizuna quote create``, within the viewer's deal scope) and hands the PDF to the browser; a
refusal (no lines, no ``quotes:`` section) comes back to the customer page as its error."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from flows.quotes import issue
from flows.quotes.render import file_stem
from flows.web.auth import db, form, signed_in
from kizuna.errors import KizunaError
from warehouse.access import audit, scope
from warehouse.access.scope import Viewer


@signed_in()
async def create(request: Request, viewer: Viewer) -> Response:
    cid, did = int(request.path_params["cid"]), int(request.path_params["did"])
    await form(request)
    ws = request.app.state.ws
    if ws is None:
        raise HTTPException(404, "quotes need the workspace file (start with `kizuna web`)")
    keep: dict[str, bytes] = {}

    def run() -> tuple[dict[str, Any] | None, str | None]:
        try:
            doc = issue.create(
                ws, str(did), engine=request.app.state.engine, visible=scope.deals(viewer),
                keep=keep,
            )  # fmt: skip
        except KizunaError as exc:
            return None, str(exc)
        return doc, None

    doc, err = await run_in_threadpool(run)
    what = f"deal {did}"
    done = f"quote {doc['number']} r{doc['revision']}" if doc else str(err)
    await db(request, lambda c: audit.record(c, viewer, "quote-create", what, done), write=True)
    if doc is None:
        return RedirectResponse(f"/customers/{cid}?error={quote(str(err), safe='')}", 303)
    name = quote(f"{file_stem(doc)}.pdf")
    return Response(
        keep["pdf"],
        media_type="application/pdf",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


ROUTES = [Route("/customers/{cid:int}/deals/{did:int}/quote", create, methods=["POST"])]
