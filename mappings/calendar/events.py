"""iCalendar events → meeting activities; shared by every calendar source (files, CalDAV, …).

(Named ``calendar_events`` because a module called ``calendar`` would shadow the stdlib.)

Identity: a single event is ``meeting:<UID>``; each occurrence of a recurring event is
``meeting:<UID>/<RECURRENCE-ID in UTC>``. The RECURRENCE-ID is the occurrence's *original*
start, so a moved instance keeps its key and the stored meeting is moved rather than a new one
appearing beside a ghost. All-day occurrences use the date (``…/2026-03-02``).

Revisions: ``Activity.revision`` is what the warehouse compares before applying an update (a
lower revision never overwrites a higher one). It packs SEQUENCE and, as the tiebreak,
LAST-MODIFIED in hours since 2000 into one 32-bit-safe integer:
``min(SEQUENCE, 2000) * 1_000_000 + hours``. Hour precision is the price of fitting a 32-bit
column; two edits within the same hour at the same SEQUENCE are ordered by input order.

Time: instants are stored in UTC; the event's own TZID is kept in ``attributes["tzid"]``.
Floating times and all-day dates are read in the workspace's time zone (``default_tz``).

Recurring series (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides) are expanded with
``recurring_ical_events`` between ``window_start`` and ``window_end``; single events are kept
whatever their date, since they are one fact each and never unbounded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component

from connectors.files.ical_split import event_uid, parse
from connectors.files.ical_split import split_by_uid as split_by_uid
from connectors.files.ical_zones import calendar_zone, zone_problem
from kizuna.errors import BadRecord
from mappings.calendar.recurrence import MAX_OCCURRENCES as MAX_OCCURRENCES
from mappings.calendar.recurrence import (
    Limits,
    expand,
    is_recurring,
    utc,
    without_empty_rules,
)
from warehouse.identity.keys.normalize import normalize_email
from warehouse.records import Activity, CellIssue, Direction, Participant

SNIPPET_CHARS = 500
KEY_CHARS = 500
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_ROOM_TYPES = {"ROOM", "RESOURCE"}
_WS = re.compile(r"\s+")

__all__ = [
    "api_meeting_key",
    "events_to_activities",
    "meeting_direction",
    "revision_of",
    "split_by_uid",
]


def events_to_activities(
    ics: str | bytes,
    *,
    own_domains: Collection[str],
    window_start: datetime,
    window_end: datetime,
    default_tz: tzinfo | str = "Asia/Tokyo",
    max_occurrences: int = MAX_OCCURRENCES,
    allow_sub_daily: bool = False,
    notes: list[CellIssue] | None = None,
) -> list[Activity]:
    """Every VEVENT of ``ics`` as meeting activities (occurrences expanded in the window).

    Raises ``BadRecord`` when the text is not iCalendar, an event cannot be placed in time
    (an unknown TZID, a floating time under an unknown X-WR-TIMEZONE), or a series breaks a
    limit: more than ``max_occurrences`` in the window, or a ``SECONDLY``/``MINUTELY`` rule
    unless ``allow_sub_daily``. Each activity's ``source_id`` is its event's UID, the unit
    calendar connectors page in. With ``notes``, what was kept out without refusing the
    event (an empty RRULE, occurrences before the window) is added there as ``CellIssue``s.
    """
    tz = ZoneInfo(default_tz) if isinstance(default_tz, str) else default_tz
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window_start and window_end must be timezone-aware")
    try:
        cals = parse(ics)
    except ValueError as exc:
        raise BadRecord(str(exc)) from None
    ctx = _Context(tz, {d.lower().lstrip("@") for d in own_domains})
    lim = Limits(tz, max_occurrences, allow_sub_daily)
    out: list[Activity] = []
    for cal in cals:
        try:
            out.extend(_calendar(cal, ctx, lim, window_start, window_end))
        except BadRecord:
            raise
        except Exception as exc:  # icalendar's BrokenCalendarProperty and friends
            raise BadRecord(f"unreadable event: {type(exc).__name__}: {exc}") from None
    if notes is not None:
        notes.extend(
            CellIssue(source_id=uid[:500], column="recurrence", value=value, reason=reason)
            for uid, value, reason in lim.notes
        )
    return out


class _Context:
    def __init__(self, tz: tzinfo, own: set[str]) -> None:
        self.tz = tz
        self.own = own

    def internal(self, email: str) -> bool:
        domain = email.rsplit("@", 1)[-1]
        return any(domain == d or domain.endswith("." + d) for d in self.own)


def _calendar(
    cal: Calendar, ctx: _Context, lim: Limits, start: datetime, end: datetime
) -> list[Activity]:
    cancel_all = str(cal.get("METHOD") or "").upper() == "CANCEL"
    found = calendar_zone(cal)
    unknown_zone = found[0] if found is not None and found[1] is None else None
    zones = [c for c in cal.subcomponents if c.name == "VTIMEZONE"]
    groups: dict[str, list[Component]] = {}
    for ev in cal.subcomponents:
        if ev.name == "VEVENT":
            uid = event_uid(ev)
            why = zone_problem(ev, unknown_zone)
            if why is not None:
                raise BadRecord(f"event {uid!r}: {why}", source_id=uid)
            groups.setdefault(uid, []).append(without_empty_rules(ev, uid, lim))
    out: list[Activity] = []
    for uid, comps in groups.items():
        if not is_recurring(comps):
            best = max(comps, key=_rank)
            out.append(_activity(best, uid, f"meeting:{uid}", ctx, cancel_all, recurring=False))
            continue
        for original, occ in expand(comps, zones, start, end, lim):
            key = f"meeting:{uid}/{original}"
            out.append(_activity(occ, uid, key, ctx, cancel_all, recurring=True))
    return out


def _activity(
    ev: Component, uid: str, key: str, ctx: _Context, cancel_all: bool, *, recurring: bool
) -> Activity:
    key = fit_key(key)
    start_prop = ev.get("DTSTART")
    if isinstance(start_prop, list):
        raise BadRecord(f"event {uid!r} has {len(start_prop)} DTSTART lines", source_id=uid)
    if start_prop is None:
        raise BadRecord(f"event {uid!r} has no DTSTART", source_id=uid)
    raw_start = getattr(start_prop, "dt", None)
    if not isinstance(raw_start, date):
        raise BadRecord(f"event {uid!r} has an unreadable DTSTART", source_id=uid)
    all_day = not isinstance(raw_start, datetime)
    starts = utc(raw_start, ctx.tz)
    ends = _end(ev, raw_start, ctx.tz)
    if ends is not None and ends < starts:
        raise BadRecord(f"event {uid!r} ends before it starts", source_id=uid)
    status_text = str(ev.get("STATUS") or "").upper()
    status = (
        "cancelled"
        if cancel_all or status_text == "CANCELLED"
        else "tentative"
        if status_text == "TENTATIVE"
        else "confirmed"
    )
    participants, rooms = _participants(ev, ctx)
    attributes: dict[str, Any] = {"uid": uid}
    tzid = _tzid(start_prop, raw_start)
    if tzid:
        attributes["tzid"] = tzid
    if all_day:
        attributes["all_day"] = True
    if recurring:
        attributes["recurring"] = True
    seq, lm = _seq_lm(ev)
    if seq:
        attributes["sequence"] = seq
    if lm:
        attributes["last_modified"] = lm.isoformat()
    if rooms:
        attributes["rooms"] = rooms
    if ev.get("URL"):
        attributes["url"] = str(ev["URL"])
    return Activity(
        source_id=uid,
        key=key,
        kind="meeting",
        occurred_at=starts,
        ends_at=ends,
        direction=meeting_direction(participants),
        subject=_text(ev.get("SUMMARY")),
        snippet=_snippet(ev.get("DESCRIPTION")),
        thread_key=uid[:500],
        location=_text(ev.get("LOCATION")),
        status=status,
        revision=revision_of(seq, lm),
        participants=participants,
        attributes=attributes,
    )


def revision_of(sequence: int, last_modified: datetime | None) -> int:
    """SEQUENCE first, LAST-MODIFIED (hours since 2000) as the tiebreak; fits 32 bits."""
    seq = min(max(sequence, 0), 2000)
    hours = 0
    if last_modified is not None:
        hours = int((last_modified - _EPOCH).total_seconds() // 3600)
        hours = min(max(hours, 0), 999_999)
    return seq * 1_000_000 + hours


def _rank(ev: Component) -> tuple[int, str]:
    """Order of precedence between two versions of one instance (comparable, no None)."""
    seq, lm = _seq_lm(ev)
    return (seq, lm.isoformat() if lm else "")


def _seq_lm(ev: Component) -> tuple[int, datetime | None]:
    try:
        seq = int(ev.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        seq = 0
    lm_prop = ev.get("LAST-MODIFIED")
    lm = getattr(lm_prop, "dt", None)
    if isinstance(lm, datetime):
        lm = lm.replace(tzinfo=UTC) if lm.tzinfo is None else lm.astimezone(UTC)
    else:
        lm = None
    return (seq, lm)


def _end(ev: Component, start: date, tz: tzinfo) -> datetime | None:
    end_prop = ev.get("DTEND")
    if end_prop is not None and isinstance(getattr(end_prop, "dt", None), date):
        return utc(end_prop.dt, tz)
    dur_prop = ev.get("DURATION")
    dur = getattr(dur_prop, "dt", None)
    if isinstance(dur, timedelta):
        if isinstance(start, datetime):
            local = start if start.tzinfo is not None else start.replace(tzinfo=tz)
            return (local + dur).astimezone(UTC)
        return utc(start + dur, tz)
    if not isinstance(start, datetime):
        return utc(start + timedelta(days=1), tz)
    return None


def _tzid(prop: Any, value: date) -> str | None:
    params = getattr(prop, "params", None) or {}
    if params.get("TZID"):
        return str(params["TZID"])
    if isinstance(value, datetime) and value.tzinfo is not None:
        key = getattr(value.tzinfo, "key", None)
        if key:
            return str(key)
        if value.utcoffset() == timedelta(0):
            return "UTC"
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def _snippet(value: Any) -> str | None:
    s = _text(value)
    if s is None:
        return None
    s = _WS.sub(" ", s).strip()
    return s if len(s) <= SNIPPET_CHARS else s[: SNIPPET_CHARS - 1].rstrip() + "…"


def _address(value: Any) -> str | None:
    params = getattr(value, "params", None) or {}
    for candidate in (str(value), str(params.get("EMAIL") or "")):
        c = candidate.strip()
        if c.lower().startswith("mailto:"):
            c = c[7:]
        n = normalize_email(c)
        if n is not None:
            return n
    return None


def _participants(ev: Component, ctx: _Context) -> tuple[list[Participant], list[str]]:
    out: list[Participant] = []
    rooms: list[str] = []
    seen: set[tuple[str, str]] = set()

    def add(value: Any, role: str) -> None:
        params = getattr(value, "params", None) or {}
        name = _text(params.get("CN"))
        if str(params.get("CUTYPE") or "").upper() in _ROOM_TYPES:
            rooms.append(name or str(value))
            return
        email = _address(value)
        if email is None or (email, role) in seen:
            return
        seen.add((email, role))
        partstat = params.get("PARTSTAT")
        out.append(
            Participant(
                email=email,
                name=name.strip('"') if name else None,
                role="organizer" if role == "organizer" else "attendee",
                response=str(partstat).lower() if partstat and role != "organizer" else None,
                internal=ctx.internal(email),
            )
        )

    organizer = ev.get("ORGANIZER")
    if organizer is not None:
        add(organizer, "organizer")
    attendees = ev.get("ATTENDEE")
    for a in attendees if isinstance(attendees, list) else [attendees] if attendees else []:
        add(a, "attendee")
    return out, rooms


def api_meeting_key(uid: str, instance: str | None) -> str:
    """``meeting:<uid>`` or ``meeting:<uid>/<instance>`` for Google and Graph events.

    The same shape as the ICS keys, so one meeting read from two calendars is one activity;
    a key longer than the column becomes a digest by the same rule as ICS keys.
    """
    return fit_key(f"meeting:{uid}/{instance}" if instance is not None else f"meeting:{uid}")


def fit_key(key: str) -> str:
    """A key that fits the column: over-long keys become a digest of the whole key, so two
    occurrences of a series with a huge UID stay two activities (a truncated UID would not)."""
    if len(key) <= KEY_CHARS:
        return key
    return f"meeting:sha:{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}"


def meeting_direction(participants: list[Participant]) -> Direction | None:
    """Who a meeting goes out from: its organizer's side (all staff → internal).

    Shared by every calendar mapping (ICS, CalDAV, Google, Microsoft 365).
    """
    if not participants:
        return None
    if all(p.internal for p in participants):
        return "internal"
    organizer = next((p for p in participants if p.role == "organizer"), None)
    if organizer is None:
        return None
    return "outbound" if organizer.internal else "inbound"
