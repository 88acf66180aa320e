"""Microsoft 365 through Microsoft Graph: mail folders and the calendar as delta streams.

Auth is the OAuth 2.0 client-credentials grant over plain httpx (no msal): one app
registration with the *application* permissions ``Mail.Read`` / ``Calendars.Read`` reads every
mailbox of its tenant (narrow it with an Exchange application access policy). Tokens live
about an hour and are cached per :class:`TokenSource`; a 401 from Graph refreshes once.

Sync is a **delta round**: the first request (``…/messages/delta`` or ``…/calendarView/delta``)
pages through ``@odata.nextLink`` until a page carries ``@odata.deltaLink``; that link is the
cursor for the next round, which returns only changes. Items with ``@removed`` are deletions.
A cursor is the last link we were given, so a crash mid-round resumes from that page. **410
Gone** or 400 ``syncStateNotFound``/``syncStateInvalid`` means the state is gone →
``ResyncRequired`` → a fresh round. A fresh mail round lists the whole folder, so it ends in a
snapshot that retires what vanished meanwhile. A calendar keeps its window start, so a fresh
round over it is a snapshot too (see :func:`events`).

Ids are requested as immutable (``Prefer: IdType="ImmutableId"``), so a message keeps its id
when a user files it in another folder. One stream per mailbox and folder (delta is per
folder), one per mailbox calendar; every mailbox has its own budget (Outlook allows 10,000
requests per 10 minutes per app and mailbox) and its own failures, so one revoked mailbox
never stops the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from connectors.page import Cursor, Page
from connectors.throttle import RetryPolicy, TokenBucket, budget_or_shared, call, parse_retry_after
from kizuna.errors import (
    AuthError,
    FatalError,
    KizunaError,
    ResyncRequired,
    TransientError,
    from_http_status,
)

GRAPH = "https://graph.microsoft.com/v1.0"
LOGIN = "https://login.microsoftonline.com"
REQUESTS_PER_10_MIN = 10_000
MESSAGE_FIELDS = (
    "internetMessageId",
    "subject",
    "bodyPreview",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "sentDateTime",
    "receivedDateTime",
    "conversationId",
    "parentFolderId",
    "isDraft",
    "categories",
    "lastModifiedDateTime",
    "hasAttachments",
    "internetMessageHeaders",
)
RESYNC_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})


class GraphAuth(BaseModel):
    """An app registration's client credentials for one tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str
    client_id: str
    client_secret: SecretStr
    authority: str = LOGIN
    scope: str = "https://graph.microsoft.com/.default"
    reauth_hint: str = ""
    """What a person should do when the secret is refused (names the secret to renew)."""

    @property
    def token_url(self) -> str:
        return f"{self.authority.rstrip('/')}/{self.tenant_id}/oauth2/v2.0/token"


class TokenSource:
    """Client-credentials access tokens, fetched on first use and renewed before expiry.

    One per app registration per process, shared by every mailbox stream of the tenant.
    """

    def __init__(self, auth: GraphAuth, *, clock: Callable[[], float] = time.time) -> None:
        self.auth = auth
        self.clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def token(self, client: httpx.Client) -> str:
        """A valid token; ``client`` is only used when a new one must be fetched."""
        with self._lock:
            if self._token is None or self.clock() >= self._expires - 300:
                self._token, ttl = self._fetch(client)
                self._expires = self.clock() + ttl
            return self._token

    def _fetch(self, client: httpx.Client) -> tuple[str, float]:
        a = self.auth
        try:
            resp = client.post(
                a.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": a.client_id,
                    "client_secret": a.client_secret.get_secret_value(),
                    "scope": a.scope,
                },
            )
        except httpx.TransportError as exc:
            raise TransientError(f"cannot reach {a.authority} for a Graph token") from exc
        body = _json(resp)
        if resp.status_code == 200 and isinstance(body.get("access_token"), str):
            return body["access_token"], float(body.get("expires_in") or 3600)
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TransientError(
                f"token endpoint unavailable ({resp.status_code})",
                retry_after=parse_retry_after(resp.headers.get("retry-after")),
            )
        code = str(body.get("error") or resp.status_code)
        codes = body.get("error_codes") or []
        aadsts = f", AADSTS{codes[0]}" if codes and isinstance(codes[0], int) else ""
        hint = f" {a.reauth_hint}" if a.reauth_hint else ""
        raise AuthError(
            f"Microsoft Entra ID refused app {a.client_id} in tenant {a.tenant_id} "
            f"({code}{aadsts}). Check the tenant id and client id, create a new client secret "
            f"under App registrations → Certificates & secrets if it expired, and store it.{hint}"
        )


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class GraphStatus(Exception):
    """A non-success Graph response, before classification (never shown to people)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class GraphOptions:
    mailbox: str
    """User id or principal name; names the budget and every error."""
    page_size: int = 100
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    budget: TokenBucket | None = None
    base_url: str = GRAPH

    def bucket(self) -> TokenBucket:
        return budget_or_shared(
            self.budget, f"graph:{self.mailbox}", per_minute=REQUESTS_PER_10_MIN / 10
        )


def classify(mailbox: str, fix: str = "") -> Callable[[BaseException], KizunaError | None]:
    def run(exc: BaseException) -> KizunaError | None:
        if isinstance(exc, httpx.TransportError):
            return TransientError(f"network error talking to Graph for {mailbox}")
        if not isinstance(exc, GraphStatus):
            return None
        resp = exc.response
        status = resp.status_code
        err = _json(resp).get("error")
        code = str(err.get("code") or "") if isinstance(err, dict) else ""
        message = str(err.get("message") or "")[:300] if isinstance(err, dict) else ""
        what = f"Graph for {mailbox}: {code or status}{': ' + message if message else ''}"
        if status == 410 or code.lower() in RESYNC_CODES:
            return ResyncRequired(f"{what}: delta state expired, full resync")
        retry_after = parse_retry_after(resp.headers.get("retry-after"))
        if status == 503 or status == 504:
            return TransientError(f"throttled or unavailable ({status}): {what}", retry_after)
        if status == 401:
            return AuthError(f"{what}: the app's token was refused (401). {fix}".strip())
        if status == 403:
            return AuthError(
                f"{what}: access denied (403). Grant the app the Mail.Read / Calendars.Read "
                f"application permissions with admin consent, and check that no application "
                f"access policy excludes {mailbox}. {fix}".strip()
            )
        if status == 404 and code in {"ErrorInvalidUser", "MailboxNotEnabledForRESTAPI"}:
            return FatalError(f"{what}: no such mailbox; fix the mailbox list in the workspace")
        return from_http_status(status, what, retry_after=retry_after, reason=code)

    return run


class GraphClient:
    """GET with a bearer token, the retry policy and the mailbox's budget."""

    def __init__(self, client: httpx.Client, tokens: TokenSource, opts: GraphOptions) -> None:
        self.client = client
        self.tokens = tokens
        self.opts = opts
        self.bucket = opts.bucket()
        self.classify = classify(opts.mailbox, tokens.auth.reauth_hint)

    def get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        refreshed = False

        def once() -> dict[str, Any]:
            nonlocal refreshed
            headers = {
                "Authorization": f"Bearer {self.tokens.token(self.client)}",
                "Prefer": (
                    f"odata.maxpagesize={self.opts.page_size}, "
                    'outlook.timezone="UTC", IdType="ImmutableId"'
                ),
                "Accept": "application/json",
            }
            resp = self.client.get(url, params=params, headers=headers)
            if resp.status_code == 401 and not refreshed:
                # An expired or rotated token: fetch a new one once before calling it refused.
                refreshed = True
                self.tokens.invalidate()
                headers["Authorization"] = f"Bearer {self.tokens.token(self.client)}"
                resp = self.client.get(url, params=params, headers=headers)
            if resp.status_code >= 400:
                raise GraphStatus(resp)
            return _json(resp)

        return call(
            once,
            classify=self.classify,
            policy=self.opts.policy,
            budget=self.bucket,
            what=f"Graph request for {self.opts.mailbox}",
        )


class DeltaCursor(Cursor):
    link: str
    """The ``@odata.nextLink`` to resume a round, or the ``@odata.deltaLink`` ending one."""
    complete: bool = False
    """True when ``link`` is a deltaLink (the round ended)."""
    window_start: datetime | None = None
    """calendarView only: the start kept since the first round (it never moves forward)."""
    window_end: datetime | None = None
    """calendarView only: the end of the window the round was opened with."""


def _round(
    api: GraphClient,
    first: tuple[str, dict[str, str]] | None,
    cursor: DeltaCursor | None,
    keep: Callable[[dict[str, Any]], bool],
    *,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    snapshot: bool = False,
) -> Iterator[Page[DeltaCursor]]:
    """Follow one delta round from ``first`` (a fresh round) or ``cursor.link``.

    ``snapshot``: a fresh round lists everything the stream holds, so its last page may retire
    what it did not list.
    """
    if cursor is None:
        assert first is not None
        url, params = first
        body = api.get(url, params)
    else:
        body = api.get(cursor.link)
    whole = cursor is None and snapshot
    while True:
        records: list[dict[str, Any]] = []
        deleted: list[str] = []
        for item in body.get("value") or []:
            iid = item.get("id")
            if not isinstance(iid, str):
                continue
            if "@removed" in item or not keep(item):
                deleted.append(iid)
            else:
                records.append(item)
        nxt = body.get("@odata.nextLink")
        delta = body.get("@odata.deltaLink")
        if isinstance(nxt, str):
            mid = DeltaCursor(link=nxt, window_start=window_start, window_end=window_end)
            yield Page(records, mid, deleted=deleted)
            body = api.get(nxt)
            continue
        if not isinstance(delta, str):
            raise TransientError(f"Graph for {api.opts.mailbox}: a page without next or delta link")
        done = DeltaCursor(
            link=delta, complete=True, window_start=window_start, window_end=window_end
        )
        yield Page(records, done, deleted=deleted, snapshot_end=whole)
        return


def messages(
    api: GraphClient,
    cursor: DeltaCursor | None,
    *,
    folder: str = "inbox",
    headers_only: bool = False,
) -> Iterator[Page[DeltaCursor]]:
    """One mail folder's messages (Graph JSON, ``$select``-ed) as delta pages; drafts dropped."""
    fields = [f for f in MESSAGE_FIELDS if not (headers_only and f == "bodyPreview")]
    url = (
        f"{api.opts.base_url}/users/{quote(api.opts.mailbox)}/mailFolders/"
        f"{quote(folder)}/messages/delta"
    )
    yield from _round(
        api,
        (url, {"$select": ",".join(fields)}),
        cursor,
        lambda m: not m.get("isDraft"),
        snapshot=True,
    )


def events(
    api: GraphClient,
    cursor: DeltaCursor | None,
    *,
    past_days: int = 90,
    future_days: int = 180,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[Page[DeltaCursor]]:
    """The mailbox calendar's events, occurrences expanded, in a window around now.

    A calendarView delta round is bound to the window it was opened with. The window's start
    is fixed by the first round and kept in the cursor (it only moves back, if ``past_days``
    grows); its end is renewed: once half of the future part has passed, the old round is
    followed to its end (no deletion lost) and a new round opens up to a new end. Because
    every new round covers every earlier window, it ends in an exact snapshot — which is
    also how an expired delta state (410) is recovered: a new round over the kept window.
    """
    t = now()
    start = (t - timedelta(days=past_days)).replace(microsecond=0)
    end = (t + timedelta(days=future_days)).replace(microsecond=0)
    exact = True
    if cursor is not None:
        if cursor.window_start is not None:
            start = min(start, cursor.window_start)
        else:
            exact = False  # a window we do not know the start of: do not retire anything
        due = cursor.window_end is None or cursor.window_end - t < timedelta(days=future_days / 2)
        try:
            yield from _round(
                api,
                None,
                cursor,
                lambda e: True,
                window_start=cursor.window_start,
                window_end=cursor.window_end,
            )
        except ResyncRequired:
            if not exact:
                raise
            due = True
        if not due:
            return
    url = f"{api.opts.base_url}/users/{quote(api.opts.mailbox)}/calendarView/delta"
    params = {
        "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    yield from _round(
        api,
        (url, params),
        None,
        lambda e: True,
        window_start=start,
        window_end=end,
        snapshot=exact,
    )
