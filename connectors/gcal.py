"""Google Calendar: one calendar's events, full sync in a window then ``syncToken``.

- **Full sync**: ``events.list(singleEvents=True, timeMin=<window start>)`` so recurring
  meetings arrive as their instances. ``timeMin`` is allowed only here: combined with a
  ``syncToken`` the API answers 400, so the window start is kept in the cursor and used only
  to resume an interrupted full sync; incremental calls carry ``syncToken`` (+ ``pageToken``)
  and ``singleEvents`` — nothing else.
- ``nextSyncToken`` is on the **last page only**; until then the cursor keeps the page token
  (and the previous sync token during an incremental pass) so a crash resumes the pass.
- Incremental results include deleted and cancelled events as ``status: "cancelled"``
  (often with nothing but an id): they become ``Page.deleted``.
- **410** ``fullSyncRequired`` → ``ResyncRequired``: the engine drops the cursor and the
  next pass is a full sync. It is *not* a snapshot: its window starts later than the first
  one did, and a snapshot would retire every older meeting. An event deleted while the token
  was stale therefore stays until the source mentions it again — the price of keeping history.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.google_api import classifier, execute
from connectors.page import Cursor, Page
from connectors.throttle import RetryPolicy, TokenBucket, shared_budget
from kizuna.errors import TransientError

QUERIES_PER_MINUTE = 600
NOT_MEETINGS = frozenset({"workingLocation", "outOfOffice", "focusTime", "birthday"})


class GcalCursor(Cursor):
    sync_token: str | None = None
    """Set once a full sync has finished: the next pass is incremental."""
    page_token: str | None = None
    """Where an interrupted pass resumes."""
    time_min: str | None = None
    """The full sync's window start (RFC 3339), kept to resume it with the same request."""


@dataclass(frozen=True)
class GcalOptions:
    account: str
    calendar_id: str = "primary"
    past_days: int = 365
    page_size: int = 250
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    budget: TokenBucket | None = None
    fix: str = ""

    def bucket(self) -> TokenBucket:
        if self.budget is not None:
            return self.budget
        return shared_budget(f"gcal:{self.account}", per_minute=QUERIES_PER_MINUTE)


def _keep(ev: dict[str, Any]) -> bool:
    return ev.get("status") != "cancelled" and ev.get("eventType") not in NOT_MEETINGS


def events(
    service: Any,
    cursor: GcalCursor | None,
    opts: GcalOptions,
    *,
    now: datetime | None = None,
) -> Iterator[Page[GcalCursor]]:
    """Pages of Google Calendar event resources (instances expanded) for one calendar."""
    classify = classifier(opts.account, fix=opts.fix, resync_statuses=frozenset({410}))
    # A stored page token the API no longer takes (400) restarts the sync, never blocks it.
    classify_resume = classifier(opts.account, fix=opts.fix, resync_statuses=frozenset({400, 410}))
    bucket = opts.bucket()
    full = cursor is None or cursor.sync_token is None
    if cursor is None:
        start = (now or datetime.now(UTC)) - timedelta(days=opts.past_days)
        time_min: str | None = start.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        token: str | None = None
    else:
        time_min, token = cursor.time_min, cursor.page_token
    sync_token = cursor.sync_token if cursor is not None else None
    resuming = token is not None
    while True:
        params: dict[str, Any] = {
            "calendarId": opts.calendar_id,
            "singleEvents": True,
            "maxResults": opts.page_size,
            "pageToken": token,
        }
        if full:
            params["timeMin"] = time_min
        else:
            params["syncToken"] = sync_token
        resp = execute(
            service.events().list(**params),
            classify=classify_resume if resuming else classify,
            policy=opts.policy,
            budget=bucket,
            what=f"calendar events.list for {opts.account}",
        )
        resuming = False
        items = [e for e in resp.get("items") or [] if isinstance(e.get("id"), str)]
        records = [e for e in items if _keep(e)]
        deleted = [str(e["id"]) for e in items if not _keep(e)]
        token = resp.get("nextPageToken")
        if token:
            nxt = GcalCursor(sync_token=sync_token, page_token=token, time_min=time_min)
            yield Page(records, nxt, deleted=deleted)
            continue
        new_sync = resp.get("nextSyncToken")
        if not isinstance(new_sync, str):
            raise TransientError(
                f"calendar of {opts.account}: last page came without nextSyncToken"
            )
        yield Page(records, GcalCursor(sync_token=new_sync), deleted=deleted)
        return
