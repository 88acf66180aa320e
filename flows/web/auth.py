"""Sessions, sign-in and CSRF: the only door into every page.

The session is a signed cookie (Starlette's ``SessionMiddleware``: HttpOnly, SameSite=Lax,
``Secure`` when served over https) holding the staff id, when they signed in and a CSRF
token. Each request reads the account again, so a role change applies at once and a
password reset ends older sessions. Every form posts the token; a missing or wrong one is
refused before the handler runs, and a cross-site ``Origin`` is refused as well.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from warehouse.access import accounts, audit, scope
from warehouse.access.scope import Viewer
from warehouse.db import write_transaction

Handler = Callable[[Request, Viewer], Awaitable[Response]]
MAX_FORM_FIELDS = 50
MAX_FIELD_BYTES = 64 * 1024


def csrf_token(request: Request) -> str:
    tok = request.session.get("csrf")
    if not isinstance(tok, str) or len(tok) < 32:
        tok = request.session["csrf"] = secrets.token_urlsafe(32)
    return tok


async def form(request: Request) -> FormData:
    """The posted form, once its CSRF token and origin are checked (403 otherwise)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
        raise HTTPException(403, "cross-site form refused")
    data = await request.form(
        max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FIELD_BYTES
    )
    sent, want = data.get("csrf"), request.session.get("csrf")
    if (
        not isinstance(sent, str)
        or not isinstance(want, str)
        or not hmac.compare_digest(sent.encode(), want.encode())
    ):
        raise HTTPException(403, "the form expired; reload the page and try again")
    return data


async def db(request: Request, fn: Callable[..., Any], *args: Any, write: bool = False) -> Any:
    """Run ``fn(conn, *args)`` in a worker thread, in one transaction when it writes.

    A writing handler takes SQLite's write lock up front: a deferred transaction that read
    first and then writes fails at once (no busy wait) when a campaign run started from the
    page committed in between."""
    engine = request.app.state.engine

    def run() -> Any:
        with write_transaction(engine) if write else engine.connect() as conn:
            return fn(conn, *args)

    return await run_in_threadpool(run)


def _load(conn: Any, staff_id: int, since: str) -> Viewer | None:
    changed = accounts.password_changed_at(conn, staff_id)
    if changed is None or changed > datetime.fromisoformat(since):
        return None
    return scope.viewer_for(conn, staff_id)


async def current(request: Request) -> Viewer | None:
    uid, since = request.session.get("uid"), request.session.get("since")
    if not isinstance(uid, int) or not isinstance(since, str):
        return None
    try:
        viewer: Viewer | None = await db(request, _load, uid, since)
    except ValueError:
        viewer = None
    if viewer is None:
        request.session.clear()
    return viewer


def signed_in(role: str = "rep") -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A page for signed-in staff of at least ``role``; others go to sign-in or get 403."""

    def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        @wraps(fn)
        async def endpoint(request: Request) -> Response:
            viewer = await current(request)
            if viewer is None:
                if request.method == "GET":
                    target = quote(request.url.path, safe="/")
                    return RedirectResponse(f"/sign-in?next={target}", status_code=303)
                raise HTTPException(401, "sign in first")
            if not viewer.at_least(role):
                raise HTTPException(403, f"this page is for {role}s")
            request.state.viewer = viewer
            csrf_token(request)
            return await fn(request, viewer)

        endpoint.required_role = role  # type: ignore[attr-defined]
        return endpoint

    return wrap


def providers(request: Request) -> list[tuple[str, str]]:
    """(name, button label) of each OIDC provider the workspace configures."""
    cfg = request.app.state.web
    return [(n, p.label or n.title()) for n, p in cfg.oidc.items()] if cfg else []


def safe_next(target: str | None) -> str:
    """Only a local path is followed after sign-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/today"
    return target


async def sign_in(request: Request) -> Response:
    from flows.web.render import page

    if request.method == "GET":
        csrf_token(request)
        return page(
            request,
            "sign_in.html.j2",
            error=None,
            next=safe_next(request.query_params.get("next")),
            providers=providers(request),
        )
    data = await form(request)
    email = str(data.get("email") or "").strip()[:320]
    password = str(data.get("password") or "")
    nxt = safe_next(str(data.get("next") or ""))

    def attempt(conn: Any) -> accounts.SignIn:
        got = accounts.sign_in(conn, email, password)
        if got.reason == "ok" and got.staff_id is not None:
            v = scope.viewer_for(conn, got.staff_id)
            audit.record(conn, v or email, "sign-in")
        else:
            audit.record(conn, email or "(blank)", f"sign-in-{got.reason}")
        return got

    got = await db(request, attempt, write=True)
    if got.staff_id is None:
        msg = (
            "This account is locked after repeated failures. Try again later or ask an admin "
            "to reset the password."
            if got.reason == "locked"
            else "Wrong e-mail address or password."
        )
        return page(
            request,
            "sign_in.html.j2",
            status=401,
            error=msg,
            next=nxt,
            providers=providers(request),
        )
    return start_session(request, got.staff_id, nxt)


def start_session(request: Request, staff_id: int, nxt: str) -> Response:
    """A fresh session for a staff user who proved who they are (password or OIDC)."""
    request.session.clear()  # nothing carried over from before sign-in
    request.session.update(
        uid=staff_id,
        since=datetime.now().astimezone().isoformat(),
        csrf=secrets.token_urlsafe(32),
    )
    return RedirectResponse(nxt, status_code=303)


async def sign_out(request: Request) -> Response:
    await form(request)
    viewer = await current(request)
    if viewer is not None:
        await db(request, lambda conn: audit.record(conn, viewer, "sign-out"), write=True)
    request.session.clear()
    return RedirectResponse("/sign-in", status_code=303)
