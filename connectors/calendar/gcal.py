"""Google Calendar: one calendar's events, full sync in a window then ``syncToken``.

- **Full sync**: ``events.list(singleEvents=True, timeMin=<window start>)`` so recurring
  meetings arrive as their instances. ``timeMin`` is allowed only here: combined with a
  ``syncToken`` the API answers 400, so the window start rides along in the cursor for full
  passes only; incremental calls carry ``syncToken`` (+ ``pageToken``) and ``singleEvents``
  — nothing else.
- ``nextSyncToken`` is on the **last page only**; until then the cursor keeps the page token
  (and the previous sync token during an incremental pass) so a crash resumes the pass.
- Incremental results include deleted and cancelled events as ``status: "cancelled"``
  (often with nothing but an id): they become ``Page.deleted``.
- **410** ``fullSyncRequired`` (or a stored page token refused) → a full pass again, from
  the window start kept in the cursor since the first full sync (``timeMin`` never moves
  forward; it moves back if ``past_days`` grows). Every full pass therefore covers at least
  what earlier ones stored, and its last page is an exact snapshot: events deleted while the
  token was stale are retired, meetings from before today's ``past_days`` are kept. Only a
  cursor without a window start (none to go back to) is handed to the engine as
  ``ResyncRequired``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.google_api import classifier, execute
from connectors.page import Cursor, Page
from connectors.throttle import RetryPolicy, TokenBucket, budget_or_shared
from kizuna.errors import ResyncRequired, TransientError

QUERIES_PER_MINUTE = 600
NOT_MEETINGS = frozenset({"workingLocation", "outOfOffice", "focusTime", "birthday"})


class GcalCursor(Cursor):
    sync_token: str | None = None
    """Set once a full sync has finished: the next pass is incremental."""
    page_token: str | None = None
    """Where an interrupted pass resumes."""
    time_min: str | None = None
    """The window start (RFC 3339) of the first full sync, kept for every later full pass."""


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
        return budget_or_shared(self.budget, f"gcal:{self.account}", per_minute=QUERIES_PER_MINUTE)


def _keep(ev: dict[str, Any]) -> bool:
    return ev.get("status") != "cancelled" and ev.get("eventType") not in NOT_MEETINGS


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    default_min = _stamp((now or datetime.now(UTC)) - timedelta(days=opts.past_days))
    sync_token = cursor.sync_token if cursor is not None else None
    full = sync_token is None
    time_min = (cursor.time_min if cursor is not None else None) or default_min
    token = cursor.page_token if cursor is not None else None
    whole_pass = full and token is None
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
        try:
            resp = execute(
                service.events().list(**params),
                classify=classify_resume if resuming else classify,
                policy=opts.policy,
                budget=bucket,
                what=f"calendar events.list for {opts.account}",
            )
        except ResyncRequired:
            if cursor is None or cursor.time_min is None or (full and not resuming):
                raise  # no anchored window to go back to: the engine starts from scratch
            # 410 (or a refused page token): a full pass over the *same* window, so its end
            # is an exact snapshot and nothing older is retired.
            full, sync_token, token, whole_pass = True, None, None, True
            time_min = min(time_min, default_min)
            resuming = False
            continue
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
        done = GcalCursor(sync_token=new_sync, time_min=time_min)
        yield Page(records, done, deleted=deleted, snapshot_end=full and whole_pass)
        return
