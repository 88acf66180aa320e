"""CalDAV calendars, read incrementally with RFC 6578 ``sync-collection`` (one calendar a stream).

Three ways through a calendar, chosen per run:

- **full pass** (no token yet, a moved expansion window, or after a reset): list every member
  with its etag, fetch them in ``calendar-multiget`` pages, and mark the last page
  ``snapshot_end`` so the engine retires members that are gone. Until that last page the
  stored cursor has no token, so a crash restarts the pass (unchanged members cost a hash);
  the token is stored only with the page that completes the pass.
- **sync-collection** with the stored token: changed members are fetched, members answered
  with 404 become ``Page.deleted``. An invalid token (403 ``DAV:valid-sync-token``, 409 or
  412 on some servers) raises ``ResyncRequired``; the engine then runs a full pass.
- **ctag/etag fallback** for servers without sync-collection: the calendar's ``getctag``
  says whether anything changed, a depth-1 PROPFIND of ``getetag`` says what; the cursor keeps
  one etag per member for that diff.

A source id is the member's path (``/user/calendar/x.ics``): that is what the server names in
deletions. The meeting activities mapped from it keep their own keys (``meeting:<UID>``), so
the same meeting from Google Calendar and from CalDAV is still one activity.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from caldav.elements import dav
from caldav.elements.base import ValuedBaseElement
from caldav.lib import error as dav_error

from connectors.page import Cursor, Page
from kizuna.errors import AuthError, ConfigError, FatalError, ResyncRequired, TransientError

log = logging.getLogger(__name__)

PAGE_SIZE = 100
INVALID_TOKEN = "{DAV:}valid-sync-token"
PROPFIND_ETAGS = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
)


class GetCtag(ValuedBaseElement):
    """CalendarServer's collection tag: changes whenever any member changes."""

    tag = "{http://calendarserver.org/ns/}getctag"


class CaldavCursor(Cursor):
    """``sync_token`` in sync mode; ``ctag`` + ``etags`` in fallback mode.

    ``window`` is the caller's expansion window, kept so a moved window triggers a full pass.
    """

    sync_token: str | None = None
    ctag: str | None = None
    etags: dict[str, str] | None = None
    window: tuple[str, str] | None = None


def read_calendar(
    calendar: Any,
    cursor: CaldavCursor | None,
    *,
    page_size: int = PAGE_SIZE,
    window: tuple[str, str] | None = None,
    use_sync: bool = True,
    label: str = "",
) -> Iterator[Page[CaldavCursor]]:
    """Pages of ``{"href", "etag", "ics"}`` since ``cursor`` (``calendar``: a caldav Calendar)."""
    name = label or _path(str(calendar.url))
    try:
        yield from _read(calendar, cursor, page_size, window, use_sync)
    except ResyncRequired:
        raise
    except dav_error.RateLimitError as exc:
        raise TransientError(
            f"CalDAV {name}: throttled ({exc.status})", retry_after=exc.retry_after_seconds
        ) from None
    except dav_error.DAVError as exc:
        raise classify(exc, name) from None
    except OSError as exc:  # niquests/requests connection errors are OSErrors
        raise TransientError(f"CalDAV {name}: connection failed ({type(exc).__name__})") from None


def _read(
    cal: Any,
    cursor: CaldavCursor | None,
    page_size: int,
    window: tuple[str, str] | None,
    use_sync: bool,
) -> Iterator[Page[CaldavCursor]]:
    window_moved = cursor is not None and window is not None and cursor.window != window
    if cursor is not None and cursor.window is not None and window is not None and window_moved:
        log.info("CalDAV %s: expansion window moved; re-reading the calendar", cal.url)
    if use_sync and cursor is not None and cursor.sync_token and not window_moved:
        yield from _incremental(cal, cursor, page_size)
        return
    if use_sync and (cursor is None or cursor.etags is None):
        try:
            listing = cal.get_objects_by_sync_token(None, load_objects=False, disable_fallback=True)
        except dav_error.DAVError as exc:
            if isinstance(exc, dav_error.AuthorizationError) and not exc.preconditions:
                raise
            log.info("CalDAV %s: no sync-collection (%s); using ctag/etag", cal.url, exc)
        else:
            members = {_path(str(o.url)): _etag(o) for o in listing}
            done = CaldavCursor(sync_token=str(listing.sync_token), window=window)
            yield from _full_pass(cal, members, page_size, done, window)
            return
    yield from _etag_diff(cal, cursor, page_size, window)


def _incremental(cal: Any, cursor: CaldavCursor, page_size: int) -> Iterator[Page[CaldavCursor]]:
    try:
        result = cal.get_objects_by_sync_token(
            cursor.sync_token, load_objects=False, disable_fallback=True
        )
    except dav_error.DAVError as exc:
        if INVALID_TOKEN in exc.preconditions or exc.status in (409, 412):
            raise ResyncRequired(
                f"CalDAV {_path(str(cal.url))}: the server no longer knows our sync-token"
            ) from None
        raise
    gone = {_path(str(u)) for u in getattr(result, "deleted_urls", set()) or set()}
    changed = {_path(str(o.url)): _etag(o) for o in result if _path(str(o.url)) not in gone}
    after = cursor.model_copy(update={"sync_token": str(result.sync_token)})
    if not changed and not gone:
        if after != cursor:
            yield Page(records=[], cursor=after)
        return
    yield from _fetch_pages(cal, changed, page_size, cursor, after, sorted(gone))


def _full_pass(
    cal: Any,
    members: dict[str, str | None],
    page_size: int,
    done: CaldavCursor,
    window: tuple[str, str] | None,
) -> Iterator[Page[CaldavCursor]]:
    # Until the pass completes the stored cursor carries no token: a crash restarts the pass.
    partial = CaldavCursor(window=window)
    yield from _fetch_pages(cal, members, page_size, partial, done, [], snapshot=True)


def _fetch_pages(
    cal: Any,
    members: dict[str, str | None],
    page_size: int,
    during: CaldavCursor,
    after: CaldavCursor,
    deleted: Sequence[str],
    *,
    snapshot: bool = False,
) -> Iterator[Page[CaldavCursor]]:
    hrefs = sorted(members)
    if not hrefs:
        yield Page(records=[], cursor=after, deleted=list(deleted), snapshot_end=snapshot)
        return
    pending = list(deleted)
    for i in range(0, len(hrefs), page_size):
        part = hrefs[i : i + page_size]
        last = i + page_size >= len(hrefs)
        records = _multiget(cal, part, members, after.window)
        yield Page(
            records=records,
            cursor=after if last else during,
            deleted=pending,
            snapshot_end=snapshot and last,
        )
        pending = []


def _etag_diff(
    cal: Any,
    cursor: CaldavCursor | None,
    page_size: int,
    window: tuple[str, str] | None,
) -> Iterator[Page[CaldavCursor]]:
    ctag = cal.get_property(GetCtag())
    ctag = str(ctag) if ctag is not None else None
    window_moved = cursor is not None and window is not None and cursor.window != window
    if (
        cursor is not None
        and cursor.etags is not None
        and ctag is not None
        and cursor.ctag == ctag
        and not window_moved
    ):
        return
    current = _member_etags(cal)
    after = CaldavCursor(ctag=ctag, etags=current, window=window)
    if cursor is None or cursor.etags is None or window_moved:
        # Nothing to diff against: a full pass that retires what it did not see.
        full: dict[str, Any] = dict(current)
        yield from _fetch_pages(
            cal, full, page_size, CaldavCursor(window=window), after, [], snapshot=True
        )
        return
    old = dict(cursor.etags)
    changed = {h: e for h, e in current.items() if old.get(h) != e}
    gone = sorted(set(old) - set(current))
    if not changed and not gone:
        if cursor != after:
            yield Page(records=[], cursor=after)
        return
    hrefs = sorted(changed)
    stored = {h: e for h, e in old.items() if h in current}
    pending = gone
    for i in range(0, len(hrefs), page_size):
        part = hrefs[i : i + page_size]
        last = i + page_size >= len(hrefs)
        records = _multiget(cal, part, changed, window)
        stored.update({h: changed[h] for h in part})
        # Mid-way, the cursor lists only members stored so far: a crash re-fetches the rest.
        during = CaldavCursor(ctag=None, etags=dict(stored), window=window)
        yield Page(records=records, cursor=after if last else during, deleted=pending)
        pending = []
    if not hrefs:
        yield Page(records=[], cursor=after, deleted=pending)


def _member_etags(cal: Any) -> dict[str, str]:
    resp = cal.client.propfind(str(cal.url), PROPFIND_ETAGS, depth=1)
    if resp.status >= 400:
        raise dav_error.PropfindError(str(cal.url), f"PROPFIND {resp.status}", status=resp.status)
    props = resp.expand_simple_props([dav.GetEtag()])
    base = _path(str(cal.url))
    out: dict[str, str] = {}
    for href, values in props.items():
        path = _path(str(href))
        if path.rstrip("/") == base.rstrip("/"):
            continue
        etag = values.get(dav.GetEtag.tag) if isinstance(values, dict) else None
        if etag:
            out[path] = str(etag)
    return out


def _multiget(
    cal: Any, hrefs: list[str], etags: dict[str, Any], window: tuple[str, str] | None
) -> list[dict[str, Any]]:
    urls = [cal.url.join(h) for h in hrefs]
    objects = cal.multiget(urls, raise_notfound=False)
    out: list[dict[str, Any]] = []
    for obj in objects:
        data = obj.data
        if not data:
            continue  # deleted between listing and fetch: the next sync reports it
        href = _path(str(obj.url))
        raw: dict[str, Any] = {"href": href, "etag": etags.get(href), "ics": str(data)}
        if window is not None and _recurs(raw["ics"]):
            # A recurring meeting's occurrences depend on the window: so must its hash.
            raw["window"] = list(window)
        out.append(raw)
    out.sort(key=lambda r: r["href"])
    return out


def _recurs(ics: str) -> bool:
    return re.search(r"^(RRULE|RDATE)[;:]", ics, re.MULTILINE) is not None


def _etag(obj: Any) -> str | None:
    props = getattr(obj, "props", None) or {}
    value = props.get(dav.GetEtag.tag)
    return str(value) if value else None


def _path(url: str) -> str:
    return urlsplit(url).path or url


def classify(exc: dav_error.DAVError, name: str) -> Exception:
    """A caldav error as the Kizuna error that says what to do next."""
    status = exc.status
    if isinstance(exc, dav_error.AuthorizationError) or status in (401, 403):
        return AuthError(
            f"CalDAV {name}: credentials refused ({status}); check the username and the "
            "password in the configured environment variable"
        )
    if isinstance(exc, dav_error.NotFoundError) or status == 404:
        return ConfigError(
            f"CalDAV {name}: calendar not found",
            field="calendars",
            fix="use the calendar's URL or its display name as the server lists it",
        )
    if status is not None and (status >= 500 or status in (408, 429)):
        return TransientError(f"CalDAV {name}: server error ({status})")
    return FatalError(f"CalDAV {name}: {type(exc).__name__} ({status}): {exc.reason}")
