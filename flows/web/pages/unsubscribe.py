"""One-click unsubscribe (RFC 8058) for the ``outbound.unsubscribe_url`` campaign mail points at.

A mail client POSTs ``List-Unsubscribe=One-Click`` to the URL with no session and no cookie:
the HMAC token in ``t`` (``kizuna.tokens``) is the proof of who and which purpose, so this is
the one form without a CSRF token. A GET (a person clicking the footer link, or a mail
scanner following it) only shows a button that posts, so nobody is unsubscribed by a
prefetch. The opt-out is recorded as consent evidence; a repeat click records nothing new.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flows.push.config import push_config
from flows.web.auth import db
from flows.web.render import page
from kizuna.tokens import parse_token
from warehouse.access import audit
from warehouse.activation.consent import ConsentEvent, record_consent


def _who(request: Request) -> tuple[int, str, str]:
    tok = request.query_params.get("t", "")[:80]
    ws = request.app.state.ws
    got = parse_token(push_config(ws).unsubscribe_secret(), tok) if ws is not None and tok else None
    if got is None:
        raise HTTPException(404, "this unsubscribe link is not valid")
    return got[0], got[1], tok


async def unsubscribe(request: Request) -> Response:
    pid, purpose, tok = _who(request)
    if request.method == "GET":
        return page(request, "unsubscribe.html.j2", token=tok, done=False)
    body = await request.body()
    if len(body) > 1000:
        raise HTTPException(413, "too long")
    try:
        event = ConsentEvent(
            person_id=pid,
            purpose=purpose,
            status="opted_out",
            source="one-click unsubscribe (RFC 8058)",
            evidence=f"one-click unsubscribe for {purpose}, link token {pid}.{purpose}",
            at=datetime.now(UTC),
        )
    except ValidationError:
        raise HTTPException(404, "this unsubscribe link is not valid") from None

    def run(conn: Any) -> bool:
        new = record_consent(conn, event)
        if new:
            audit.record(conn, "one-click", "unsubscribe", f"person {pid}", purpose)
        return new

    await db(request, run, write=True)
    return page(request, "unsubscribe.html.j2", token=tok, done=True)


ROUTES = [Route("/unsubscribe", unsubscribe, methods=["GET", "POST"])]
