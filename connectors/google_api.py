"""What every Google connector shares: credentials per user, the service, error classes.

Two ways to act as a user, both built from secrets the flows resolve (never read here):

- a **service account with domain-wide delegation** (one key for many users of a Workspace
  domain; the admin grants its client id the scopes in Admin console → Security → API
  controls → Domain-wide delegation);
- **per-user OAuth tokens** (an "authorized user" JSON with ``refresh_token``, ``client_id``,
  ``client_secret``), for consumer accounts or when delegation is not allowed.

Google errors become Kizuna errors here, once, naming the account and what to do; tokens,
keys and Google's raw responses never reach a message.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.throttle import RetryPolicy, TokenBucket, call, parse_retry_after
from kizuna.errors import AuthError, KizunaError, ResyncRequired, TransientError, from_http_status

GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_METADATA = "https://www.googleapis.com/auth/gmail.metadata"
CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
CONTACTS_READONLY = "https://www.googleapis.com/auth/contacts.readonly"
OTHER_CONTACTS_READONLY = "https://www.googleapis.com/auth/contacts.other.readonly"


class GoogleAuth(BaseModel):
    """Credentials for a set of Google users; builds one service per user.

    ``service_account_key`` is the JSON key of a service account with domain-wide delegation;
    ``user_tokens`` maps a user's address to its authorized-user JSON. A user found in
    ``user_tokens`` uses its token; anyone else is impersonated through the service account.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_account_key: SecretStr | None = None
    user_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    reauth_hint: str = ""
    """What a person should do when a user's credentials are refused (names the secret)."""

    def mode_for(self, user: str) -> Literal["oauth", "service_account"]:
        if user in self.user_tokens:
            return "oauth"
        if self.service_account_key is not None:
            return "service_account"
        raise AuthError(
            f"no Google credentials for {user}: give a service account key or an OAuth token"
        )

    def credentials_for(self, user: str, scopes: Sequence[str]) -> Any:
        """google-auth credentials acting as ``user``; nothing is fetched until first use."""
        if self.mode_for(user) == "oauth":
            from google.oauth2.credentials import Credentials

            info = _json_secret(self.user_tokens[user], f"OAuth token of {user}")
            return Credentials.from_authorized_user_info(info, scopes=list(scopes))  # type: ignore[no-untyped-call]
        from google.oauth2 import service_account

        assert self.service_account_key is not None
        info = _json_secret(self.service_account_key, "service account key")
        return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=list(scopes), subject=user
        )

    def fix_for(self, user: str) -> str:
        """The sentence that tells an admin how to restore access for ``user``."""
        hint = f" {self.reauth_hint}" if self.reauth_hint else ""
        if user in self.user_tokens:
            return f"Re-authorise {user} (its OAuth token expired or was revoked) and store the new token.{hint}"
        return (
            f"Check that {user} exists and that the service account's client id has "
            "domain-wide delegation for the needed scopes (Admin console → Security → "
            f"API controls → Domain-wide delegation).{hint}"
        )


def _json_secret(secret: SecretStr, what: str) -> dict[str, Any]:
    try:
        data = json.loads(secret.get_secret_value())
    except ValueError:
        raise AuthError(f"the {what} is not valid JSON") from None
    if not isinstance(data, dict):
        raise AuthError(f"the {what} is not a JSON object")
    return data


def build_service(
    api: str,
    version: str,
    *,
    credentials: Any = None,
    http: Any = None,
    client_options: dict[str, Any] | None = None,
) -> Any:
    """A googleapiclient service from the discovery document shipped with the library.

    ``http`` is the test seam (``HttpMockSequence`` or a plain ``httplib2.Http``); with
    credentials too, token refreshes go through the same transport.
    """
    from googleapiclient.discovery import build

    if http is not None and credentials is not None:
        import google_auth_httplib2  # type: ignore[import-untyped]

        http = google_auth_httplib2.AuthorizedHttp(credentials, http=http)
        credentials = None
    return build(
        api,
        version,
        credentials=credentials,
        http=http,
        static_discovery=True,
        cache_discovery=False,
        client_options=client_options,
    )


def error_details(content: bytes | str | None) -> tuple[str, str]:
    """(reason, message) from Google's JSON error body, either of its two shapes.

    Classic: ``{"error": {"errors": [{"reason": "rateLimitExceeded", ...}], "message": ...}}``;
    newer APIs: ``{"error": {"status": "FAILED_PRECONDITION", "details": [{"@type":
    "type.googleapis.com/google.rpc.ErrorInfo", "reason": "EXPIRED_SYNC_TOKEN"}]}}``.
    """
    if not content:
        return "", ""
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return "", ""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return "", ""
    message = str(err.get("message") or "")[:300]
    reason = ""
    for item in err.get("errors") or []:
        if isinstance(item, dict) and item.get("reason"):
            reason = str(item["reason"])
            break
    if not reason:
        for item in err.get("details") or []:
            if isinstance(item, dict) and item.get("reason"):
                reason = str(item["reason"])
                break
    if not reason and err.get("status"):
        reason = str(err["status"])
    return reason, message


_NETWORK = (socket.timeout, TimeoutError, ConnectionError, ssl.SSLError)


def classifier(
    account: str,
    *,
    fix: str = "",
    resync_statuses: frozenset[int] = frozenset(),
    resync_reasons: frozenset[str] = frozenset({"EXPIRED_SYNC_TOKEN", "fullSyncRequired"}),
) -> Callable[[BaseException], KizunaError | None]:
    """A ``classify`` for :func:`connectors.throttle.call` on Google client exceptions."""
    from google.auth import exceptions as gauth
    from googleapiclient.errors import HttpError

    def classify(exc: BaseException) -> KizunaError | None:
        if isinstance(exc, gauth.RefreshError):
            code = _refresh_code(exc)
            return AuthError(f"Google refused the credentials of {account} ({code}). {fix}")
        if isinstance(exc, (gauth.TransportError, *_NETWORK)):
            return TransientError(f"network error talking to Google for {account}")
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            return TransientError(f"network error talking to Google for {account}")
        if not isinstance(exc, HttpError):
            return None
        status = int(exc.resp.status)
        reason, message = error_details(exc.content)
        retry_after = parse_retry_after(exc.resp.get("retry-after"))
        what = f"Google API for {account}: {message or reason or 'error'}"
        if status in resync_statuses or reason in resync_reasons:
            return ResyncRequired(f"{what} ({status} {reason}): cursor expired, full resync")
        err = from_http_status(status, what, retry_after=retry_after, reason=reason)
        if isinstance(err, AuthError):
            return AuthError(f"{err} [{reason or status}]. {fix}")
        return err

    return classify


def _refresh_code(exc: BaseException) -> str:
    """``invalid_grant`` or the like, from a RefreshError, without anything else it carries."""
    text = str(exc.args[0]) if exc.args else ""
    code = text.split(":", 1)[0].strip()
    if code and code.replace("_", "").isalpha() and len(code) < 40:
        return code
    return "refresh failed"


def execute(
    request: Any,
    *,
    classify: Callable[[BaseException], KizunaError | None],
    policy: RetryPolicy,
    budget: TokenBucket | None = None,
    cost: float = 1.0,
    what: str = "Google request",
) -> dict[str, Any]:
    """Execute one googleapiclient request under the retry policy and the account's budget."""
    result = call(
        request.execute, classify=classify, policy=policy, budget=budget, cost=cost, what=what
    )
    return result if isinstance(result, dict) else {}
