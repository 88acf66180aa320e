"""The ASGI app: routes, sessions, security headers, static assets, errors as pages.

Built from a workspace file so it opens the same warehouse and company settings as every
command; ``kizuna web`` serves it with uvicorn, and tests drive it with Starlette's client.
Every route needs a session except sign-in, the static assets and the health check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flows.web import auth, customers, render
from flows.web.oidc import WebConfig
from flows.web.pages import (
    audit_log,
    campaigns,
    daily,
    home,
    oidc_sign_in,
    pipeline,
    quotes,
    review,
    sources,
    unsubscribe,
)
from flows.web.secret import session_secret

SESSION_HOURS = 8
PUBLIC = frozenset(
    {
        "/sign-in",
        "/sign-in/oidc/{name}",
        "/sign-in/oidc/{name}/callback",
        "/static/kizuna.css",
        "/static/kizuna.js",
        "/healthz",
        "/favicon.ico",
        "/unsubscribe",
    }
)
HEADERS = [
    (
        b"content-security-policy",
        # Scripts only from the app; style attributes allowed (the pipeline report's bars).
        b"default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
        b"form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Adds the headers above to every response, and ``no-store`` to every page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + HEADERS
                if not static:
                    message["headers"].append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, with_headers)


async def stylesheet(request: Request) -> Response:
    return Response(
        render.stylesheet(),
        media_type="text/css; charset=utf-8",
        headers={"cache-control": "public, max-age=3600"},
    )


async def script(request: Request) -> Response:
    return Response(
        render.script(),
        media_type="text/javascript; charset=utf-8",
        headers={"cache-control": "public, max-age=3600"},
    )


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def favicon(request: Request) -> Response:
    return Response(status_code=204)  # none: browsers stop asking, nothing is logged as 404


async def root(request: Request) -> Response:
    return RedirectResponse("/today", status_code=303)


async def error_page(request: Request, exc: Exception) -> Response:
    code = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "something went wrong"
    if code == 401:
        return RedirectResponse("/sign-in", status_code=303)
    return render.page(request, "error.html.j2", status=code, code=code, detail=detail)


def routes() -> list[BaseRoute]:
    return [
        Route("/", root),
        Route("/healthz", healthz),
        Route("/favicon.ico", favicon),
        Route("/static/kizuna.css", stylesheet),
        Route("/static/kizuna.js", script),
        Route("/sign-in", auth.sign_in, methods=["GET", "POST"]),
        Route("/sign-out", auth.sign_out, methods=["POST"]),
        *oidc_sign_in.ROUTES,
        Route("/customers", customers.listing),
        Route("/customers/{cid:int}", customers.show),
        Route("/customers/{cid:int}/notes", customers.add_note, methods=["POST"]),
        *home.ROUTES,
        *unsubscribe.ROUTES,
        *audit_log.ROUTES,
        *sources.ROUTES,
        *review.ROUTES,
        *daily.ROUTES,
        *pipeline.ROUTES,
        *quotes.ROUTES,
        *campaigns.ROUTES,
    ]


def build(
    engine: Any,
    state_dir: Path,
    zone: str = "Asia/Tokyo",
    rules: Any = None,
    phone_region: str = "JP",
    https_only: bool = False,
    workspace: Any = None,
    web: WebConfig | None = None,
) -> Starlette:
    """The app over an open warehouse; ``state_dir`` holds the session key, ``web`` the
    workspace's ``web:`` section (OIDC providers)."""
    app = Starlette(
        routes=routes(),
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=session_secret(state_dir),
                session_cookie="kizuna_session",
                max_age=SESSION_HOURS * 3600,
                same_site="lax",
                https_only=https_only,
            ),
        ],
        exception_handlers={HTTPException: error_page, 500: error_page},
    )
    app.state.engine = engine
    app.state.zone = zone
    app.state.rules = rules
    app.state.phone_region = phone_region
    app.state.ws = workspace  # for pages that run a flow's code (the 日報 draft)
    app.state.web = web
    return app


def from_workspace(path: Path, https_only: bool = False) -> Starlette:
    """The app for a workspace file: its warehouse, time zone and identity rules."""
    from flows import config
    from flows.identity.config import settings_for
    from flows.runtime import engine_for
    from flows.web.oidc import web_config

    ws = config.load(path)
    _, rules = settings_for(ws)
    return build(
        engine_for(ws.warehouse_url),
        ws.root / ".kizuna",
        ws.company.time_zone,
        rules,
        ws.company.phone_region,
        https_only,
        ws,
        web_config(ws),
    )
