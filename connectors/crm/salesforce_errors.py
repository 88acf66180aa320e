"""Salesforce failures as Kizuna errors, and the guard every client call runs under.

Shared by the read side, the write side and the OAuth helpers: a ``SalesforceError`` is
classified by HTTP status and Salesforce ``errorCode`` in one place, so a refused session is an
``AuthError`` and a 5xx a retried ``TransientError`` whichever module made the call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceError

from connectors.throttle import RetryPolicy, call
from kizuna.errors import AuthError, KizunaError, TransientError, from_http_status


def translate(exc: SalesforceError) -> KizunaError:
    """A simple-salesforce error as a Kizuna error, by status and Salesforce ``errorCode``."""
    content = exc.content
    code, message = "", ""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        code = str(content[0].get("errorCode", ""))
        message = str(content[0].get("message", ""))
    elif isinstance(content, dict):
        code = str(content.get("errorCode", ""))
        message = str(content.get("message", ""))
    text = f"salesforce {exc.resource_name or 'request'}: {code or exc.status} {message}".strip()
    if exc.status == 401 or code == "INVALID_SESSION_ID":
        return AuthError(f"{text}; the session or token was refused, re-authorise")
    return from_http_status(exc.status, text, reason=code)


def classify(exc: BaseException) -> KizunaError | None:
    """A client exception as a Kizuna error (for ``connectors.throttle.call``)."""
    if isinstance(exc, SalesforceError):
        return translate(exc)
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return TransientError(f"salesforce: network error ({type(exc).__name__})")
    return None


@dataclass
class Guard:
    """Runs client calls under the shared retry policy: transient failures (5xx, network) are
    retried in place with backoff, the rest become Kizuna errors at once."""

    what: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __call__(self, fn: Callable[[], Any], *, retry: bool = True) -> Any:
        policy = self.policy if retry else replace(self.policy, max_retries=0)
        return call(fn, classify=classify, policy=policy, what=f"salesforce {self.what}")
