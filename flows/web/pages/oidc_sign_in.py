"""Sign-in with Google Workspace or Microsoft 365: the two steps of the code flow.

``/sign-in/oidc/<name>`` keeps a fresh state, nonce and PKCE verifier in the (signed) session
and sends the browser to the provider; ``…/callback`` takes them out again (so a callback
works once), checks the state, trades the code for the ID token, verifies it
(``flows.web.oidc``) and signs in the staff user with that verified address. Every refusal
is audited with its reason and shown to the person as one line with what to do.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

import httpx
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from flows.secrets import resolve_secret
from flows.web import oidc
from flows.web.auth import db, providers, safe_next, start_session
from flows.web.render import page
from kizuna.errors import KizunaError
from warehouse.access import accounts, audit, scope

TIMEOUT = httpx.Timeout(10.0)
REFUSED = "The sign-in could not be verified. Start again; if it keeps failing, ask an admin."


def _provider(request: Request) -> tuple[str, oidc.Provider]:
    name = str(request.path_params["name"])
    cfg = request.app.state.web
    if cfg is None or name not in cfg.oidc:
        raise HTTPException(404, "no such sign-in provider")
    return name, cfg.oidc[name]


def _redirect_uri(request: Request, name: str) -> str:
    base = request.app.state.web.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/sign-in/oidc/{name}/callback"


def _refused(request: Request, message: str, status: int = 401) -> Response:
    return page(
        request,
        "sign_in.html.j2",
        status=status,
        error=message,
        next="/today",
        providers=providers(request),
    )


async def start(request: Request) -> Response:
    name, p = _provider(request)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            md = await oidc.metadata(client, p)
    except (httpx.HTTPError, ValueError, KizunaError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        await db(
            request, lambda c: audit.record(c, name, "oidc-unreachable", None, detail), write=True
        )
        return _refused(request, f"{p.label or name} cannot be reached now; try again.", 502)
    state, nonce, verifier = (secrets.token_urlsafe(n) for n in (24, 24, 48))
    request.session["oidc"] = {
        "p": name,
        "s": state,
        "n": nonce,
        "v": verifier,
        "next": safe_next(request.query_params.get("next")),
        "t": time.time(),
    }
    url = oidc.authorize_url(md, p, _redirect_uri(request, name), state, nonce, verifier)
    return RedirectResponse(url, status_code=303)


async def callback(request: Request) -> Response:
    name, p = _provider(request)
    pending = request.session.pop("oidc", None)  # one use: a replayed callback finds nothing
    q = request.query_params
    state = q.get("state", "")
    if (
        not isinstance(pending, dict)
        or pending.get("p") != name
        or not hmac.compare_digest(str(pending.get("s", "")).encode(), state.encode())
    ):
        return await _deny(request, name, "state missing or not this browser's", 400)
    if time.time() - float(pending.get("t", 0)) > oidc.PENDING_SECONDS:
        return await _deny(request, name, "the sign-in took too long", 400)
    if "error" in q or not q.get("code"):
        return await _deny(request, name, f"provider answered {q.get('error', 'no code')!r}")
    try:
        secret = resolve_secret(
            p.client_secret_env, field=f"web.oidc.{name}.client_secret_env"
        ).get_secret_value()
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            md = await oidc.metadata(client, p)
            token = await oidc.exchange(
                client, md, p, secret, q["code"], _redirect_uri(request, name), str(pending["v"])
            )
            claims = await oidc.verify(client, md, p, token, str(pending["n"]))
        email = oidc.email_of(claims, p)
    except (httpx.HTTPError, ValueError, KizunaError) as exc:
        return await _deny(request, name, f"{type(exc).__name__}: {exc}")

    def find(conn: Any) -> int | None:
        sid = accounts.staff_id_of(conn, email)
        viewer = scope.viewer_for(conn, sid) if sid is not None else None
        audit.record(conn, viewer or email, "sign-in" if viewer else "sign-in-unknown", name)
        return viewer.staff_id if viewer else None

    staff_id = await db(request, find, write=True)
    if staff_id is None:
        return _refused(
            request, f"{email} has no Kizuna account. Ask an admin to add it (kizuna users add)."
        )
    return start_session(request, staff_id, safe_next(str(pending.get("next") or "")))


async def _deny(request: Request, name: str, why: str, status: int = 401) -> Response:
    await db(request, lambda c: audit.record(c, name, "sign-in-refused", None, why), write=True)
    return _refused(request, REFUSED, status)


ROUTES = [
    Route("/sign-in/oidc/{name}", start),
    Route("/sign-in/oidc/{name}/callback", callback),
]
