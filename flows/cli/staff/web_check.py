"""``kizuna check``'s lines for the ``web:`` section: each OIDC provider's secret is set and
its discovery document answers with the configured issuer (nothing is signed in)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from flows.workspace import Workspace


def web_checks(ws: Workspace, attempt: Callable[[str, Any], Any]) -> Iterator[Any]:
    """One line per provider, made by ``attempt(what, fn)`` (``check._try``)."""
    if not ws.web:
        return
    from flows.web.oidc import web_config

    try:
        cfg = web_config(ws)
    except Exception as exc:  # the section's own error, as its line
        yield attempt("web", lambda e=exc: _raise(e))
        return
    for name, p in cfg.oidc.items():
        yield attempt(f"web sign-in {name}", lambda n=name, p=p: _provider(n, p))


def _raise(exc: Exception) -> str:
    raise exc


def _provider(name: str, p: Any) -> str:
    import httpx

    from flows.secrets import resolve_secret
    from flows.web import oidc

    resolve_secret(p.client_secret_env, field=f"web.oidc.{name}.client_secret_env")

    async def discover() -> oidc.Metadata:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
            return await oidc.metadata(client, p)

    md = asyncio.run(discover())
    return f"{p.issuer} answers (token endpoint {md.token_endpoint}); {p.client_secret_env} set"
