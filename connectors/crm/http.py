"""One HTTP call to a CRM over an injected ``httpx.Client``, under ``connectors.throttle``.

The throttle module (shared with the Google/Graph connectors) retries what is transient,
honouring ``Retry-After``; this module only decides what a response means: ``explain`` turns an
API's own error body into a Kizuna error (HubSpot's ``policyName: DAILY`` is a spent quota,
not a pause), and statuses the caller handles itself (a kintone 409 revision conflict) come
back as responses via ``accept``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import httpx

from connectors.throttle import Budget, RetryPolicy, call, parse_retry_after
from kizuna.errors import KizunaError, TransientError, from_http_status

Explain = Callable[[httpx.Response, str], KizunaError | None]


class HttpFailure(Exception):
    """A response that is an error; carried to the classifier, never shown to users."""

    def __init__(self, response: httpx.Response, what: str) -> None:
        super().__init__(f"{what}: HTTP {response.status_code}")
        self.response = response
        self.what = what


def body_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict):
        parts = [str(body.get(k)) for k in ("code", "category", "message") if body.get(k)]
        return " ".join(parts)[:500]
    return str(body)[:200]


def classify_with(explain: Explain | None) -> Callable[[BaseException], KizunaError | None]:
    def classify(exc: BaseException) -> KizunaError | None:
        if isinstance(exc, HttpFailure):
            resp = exc.response
            if explain is not None:
                got = explain(resp, exc.what)
                if got is not None:
                    return got
            retry = parse_retry_after(resp.headers.get("Retry-After"))
            return from_http_status(
                resp.status_code, f"{exc.what}: {body_message(resp)}", retry_after=retry
            )
        if isinstance(exc, httpx.TransportError):
            return TransientError(f"network error: {type(exc).__name__}")
        return None

    return classify


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    what: str,
    policy: RetryPolicy,
    explain: Explain | None = None,
    accept: Collection[int] = (),
    budget: Budget | None = None,
    **kwargs: Any,
) -> httpx.Response:
    def once() -> httpx.Response:
        resp = client.request(method, url, **kwargs)
        if resp.status_code >= 400 and resp.status_code not in accept:
            resp.read()
            raise HttpFailure(resp, what)
        return resp

    return call(once, classify=classify_with(explain), policy=policy, budget=budget, what=what)
