"""Gmail: one mailbox as a stream of messages, full sync then ``history.list``.

Cursor lifecycle:

1. no cursor → ``getProfile`` gives the mailbox's current ``historyId`` *before* listing, so
   anything that changes during the listing is replayed by history afterwards; then
   ``messages.list`` pages (cursor keeps the list ``page_token`` so a crash resumes the listing)
   and one ``messages.get`` per id. The last page ends a snapshot, so a resync also retires
   mail that vanished while our cursor was stale.
2. ``history.list(startHistoryId)`` paged by ``pageToken``; a page's cursor is the id of the
   last history record it covered (history ids ascend, so resuming from it needs no page
   token), the last page's cursor the response's ``historyId``.
3. **404** on a stale start id (kept ~a week, sometimes hours) → ``ResyncRequired``; the engine
   drops the cursor and runs step 1 again.

Changes map to records as: ``messagesAdded`` and label changes → the message is fetched again
(its user labels are part of the record), except read/star/importance/category flips, which
are ignored; ``messagesDeleted`` (permanent deletes) → ``Page.deleted``; moved to TRASH or SPAM
→ ``Page.deleted`` without a fetch, and fetched back if it leaves them. Quota costs follow Google's table (list 5, get 5,
history 2, profile 1 unit) against a per-user bucket of 6,000 units a minute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.google_api import classifier, execute
from connectors.page import Cursor, Page, RawBad
from connectors.throttle import RetryPolicy, TokenBucket, budget_or_shared
from kizuna.errors import KizunaError

QUOTA_PER_MINUTE = 6000
COST = {"getProfile": 1, "messages.list": 5, "messages.get": 5, "history.list": 2}
HIDDEN_LABELS = frozenset({"TRASH", "SPAM", "DRAFT", "CHAT"})
"""A message carrying one of these is not (or no longer) mail we keep."""
DEFAULT_QUERY = "-in:chats -in:drafts"
VOLATILE_LABELS = frozenset({"UNREAD", "STARRED", "IMPORTANT"})
"""Labels that flip as people read mail; not worth a refetch, and not stored."""


class GmailCursor(Cursor):
    history_id: str
    phase: Literal["full", "incremental"] = "incremental"
    page_token: str | None = None
    """Full phase only: where ``messages.list`` resumes."""


@dataclass(frozen=True)
class GmailOptions:
    account: str
    """The mailbox address; names the budget and every error."""
    headers_only: bool = False
    """``format=metadata``: headers only, bodies never leave Google."""
    query: str = ""
    """Extra Gmail search for the full sync (e.g. ``newer_than:2y``); ignored headers-only."""
    page_size: int = 100
    max_page_bytes: int = 16 * 1024 * 1024
    """Raw mail can be 25 MB each: a page is cut early when its bodies reach this size."""
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    budget: TokenBucket | None = None
    fix: str = ""
    """What to tell an admin when the account's credentials are refused."""

    def bucket(self) -> TokenBucket:
        return budget_or_shared(self.budget, f"gmail:{self.account}", per_minute=QUOTA_PER_MINUTE)


class _Api:
    """The few calls this connector makes, each under the policy, the budget and a classifier."""

    def __init__(self, service: Any, opts: GmailOptions) -> None:
        self.service = service
        self.opts = opts
        self.users = service.users()
        self.bucket = opts.bucket()
        self.classify = classifier(opts.account, fix=opts.fix)
        self.classify_history = classifier(
            opts.account, fix=opts.fix, resync_statuses=frozenset({404})
        )
        # A stored list page token that the API no longer takes would block the stream
        # forever; restarting the full sync is the way out.
        self.classify_resume = classifier(
            opts.account, fix=opts.fix, resync_statuses=frozenset({400})
        )

    def run(
        self,
        request: Any,
        method: str,
        classify: Callable[[BaseException], KizunaError | None] | None = None,
    ) -> dict[str, Any]:
        return execute(
            request,
            classify=classify or self.classify,
            policy=self.opts.policy,
            budget=self.bucket,
            cost=COST[method],
            what=f"gmail {method} for {self.opts.account}",
        )

    def profile(self) -> dict[str, Any]:
        return self.run(self.users.getProfile(userId="me"), "getProfile")

    def list_page(self, page_token: str | None) -> dict[str, Any]:
        # Headers-only runs under the gmail.metadata scope, which refuses ``q`` (403):
        # drafts and chats are then dropped by their labels after the get.
        q = None
        if not self.opts.headers_only:
            q = " ".join(p for p in (DEFAULT_QUERY, self.opts.query) if p)
        req = self.users.messages().list(
            userId="me", maxResults=self.opts.page_size, pageToken=page_token, q=q
        )
        return self.run(req, "messages.list", self.classify_resume if page_token else None)

    def history_page(self, start: str, page_token: str | None) -> dict[str, Any]:
        req = self.users.history().list(
            userId="me", startHistoryId=start, pageToken=page_token, maxResults=500
        )
        return self.run(req, "history.list", self.classify_history)

    def message(self, mid: str) -> dict[str, Any] | None:
        """The message, or None if it is gone (deleted between listing and fetching)."""
        from googleapiclient.errors import HttpError

        fmt = "metadata" if self.opts.headers_only else "raw"
        req = self.users.messages().get(userId="me", id=mid, format=fmt)
        try:
            return self.run(req, "messages.get")
        except KizunaError as exc:
            cause = exc.__cause__
            if isinstance(cause, HttpError) and int(cause.resp.status) == 404:
                return None
            raise


def messages(
    service: Any, cursor: GmailCursor | None, opts: GmailOptions
) -> Iterator[Page[GmailCursor]]:
    """Pages of Gmail message resources (``format=raw`` or ``metadata``) for one mailbox."""
    api = _Api(service, opts)
    if cursor is None or cursor.phase == "full":
        yield from _full(api, cursor)
    else:
        yield from _incremental(api, cursor)


@dataclass
class _Chunk:
    records: list[dict[str, Any]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    bad: list[RawBad] = field(default_factory=list)
    size: int = 0


def _fetch(api: _Api, ids: list[str]) -> Iterator[_Chunk]:
    """The messages of ``ids``, in chunks of at most ``max_page_bytes`` of raw content.

    Memory stays flat however large the mail: every chunk but the last goes to the engine
    under the cursor from *before* this batch, so a crash re-fetches the batch (the upsert
    absorbs the repeats) and never skips one.
    """
    chunk = _Chunk()
    for mid in ids:
        if chunk.size >= api.opts.max_page_bytes:  # cut before the next one: never empty
            yield chunk
            chunk = _Chunk()
        msg = api.message(mid)
        if msg is None:
            chunk.gone.append(mid)
        elif not isinstance(msg.get("id"), str):
            chunk.bad.append(RawBad(mid, "Gmail returned a message without an id"))
        elif HIDDEN_LABELS & set(msg.get("labelIds") or ()):
            chunk.gone.append(mid)
        else:
            chunk.records.append(msg)
            chunk.size += len(msg.get("raw") or "") or int(msg.get("sizeEstimate") or 0)
    yield chunk


def _pages(
    api: _Api, ids: list[str], before: GmailCursor, after: GmailCursor, **last: Any
) -> Iterator[Page[GmailCursor]]:
    """One page per chunk: early chunks under ``before``, the last under ``after``."""
    pending: _Chunk | None = None
    for chunk in _fetch(api, ids):
        if pending is not None:
            yield Page(pending.records, before, deleted=pending.gone, bad=pending.bad)
        pending = chunk
    assert pending is not None
    yield Page(pending.records, after, deleted=pending.gone, bad=pending.bad, **last)


def _full(api: _Api, cursor: GmailCursor | None) -> Iterator[Page[GmailCursor]]:
    if cursor is None:
        start = str(api.profile()["historyId"])
        token: str | None = None
    else:
        start, token = cursor.history_id, cursor.page_token
    whole_pass = token is None
    while True:
        before = GmailCursor(history_id=start, phase="full", page_token=token)
        resp = api.list_page(token)
        ids = [str(m["id"]) for m in resp.get("messages") or [] if m.get("id")]
        token = resp.get("nextPageToken")
        if token:
            after = GmailCursor(history_id=start, phase="full", page_token=token)
            yield from _pages(api, ids, before, after)
            continue
        done = GmailCursor(history_id=start, phase="incremental")
        yield from _pages(api, ids, before, done, snapshot_end=whole_pass)
        return


def _action(kind: str, labels: set[str]) -> Literal["fetch", "delete"] | None:
    """What a history item means for our copy: fetch the message again, drop it, or nothing.

    Moving to trash or spam drops it without a fetch; leaving them fetches it back. Changes
    of read/starred/importance/category labels alone are ignored: they change nothing we
    keep, and refetching every message a user reads would spend quota for nothing.
    """
    if kind == "messagesDeleted":
        return "delete"
    if kind == "messagesAdded":
        return "fetch"
    if kind == "labelsAdded" and labels & HIDDEN_LABELS:
        return "delete"
    if labels and all(volatile_label(x) for x in labels):
        return None
    return "fetch"


def volatile_label(label: str) -> bool:
    return label in VOLATILE_LABELS or label.startswith("CATEGORY_")


def _incremental(api: _Api, cursor: GmailCursor) -> Iterator[Page[GmailCursor]]:
    start = cursor.history_id
    position = start
    token: str | None = None
    while True:
        resp = api.history_page(start, token)
        history = resp.get("history") or []
        changed: dict[str, None] = {}
        deleted: dict[str, None] = {}
        for rec in history:
            for kind in ("messagesAdded", "labelsAdded", "labelsRemoved", "messagesDeleted"):
                for item in rec.get(kind) or []:
                    mid = (item.get("message") or {}).get("id")
                    action = _action(kind, set(item.get("labelIds") or ()))
                    if not mid or action is None:
                        continue
                    mid = str(mid)
                    changed.pop(mid, None)
                    deleted.pop(mid, None)
                    (changed if action == "fetch" else deleted)[mid] = None
        token = resp.get("nextPageToken")
        if token:
            nxt = GmailCursor(history_id=str(history[-1]["id"]) if history else position)
        else:
            nxt = GmailCursor(history_id=str(resp.get("historyId") or position))
        before = GmailCursor(history_id=position)
        for i, page in enumerate(_pages(api, list(changed), before, nxt)):
            if i == 0 and deleted:  # deletions need no fetch: they ride on the first page
                page = Page(page.records, page.cursor, [*deleted, *page.deleted], page.bad)
            yield page
        position = nxt.history_id
        if not token:
            return
