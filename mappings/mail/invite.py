"""A mailed invitation (iTIP, RFC 5546: a ``text/calendar`` part, inline or attached) → the
meeting it creates, updates or cancels.

The meetings are built by the calendar mapping (:func:`mappings.calendar.events.
events_to_activities`), so their keys are those every calendar source uses
(``meeting:<UID>``, ``meeting:<UID>/<RECURRENCE-ID>``): the same event read from CalDAV, an
.ics file and an invitation mail is one meeting, and the ``METHOD:CANCEL`` that arrives later
by mail cancels it. By method:

- ``REQUEST``, ``PUBLISH``, ``ADD``: the meetings, as the organizer sent them;
- ``CANCEL``: the same meetings with status ``cancelled`` (the calendar mapping reads the
  method);
- ``REPLY``, ``COUNTER`` and the rest: no meeting changes (an attendee's answer carries only
  their own line); the answer (who, accepted/declined/tentative) is kept on the mail.

Which version wins is the warehouse's revision rule (SEQUENCE, then the time it was last
changed): a mail's version counts as changed when it was sent (its ``Date``), so a CANCEL at
the SEQUENCE of the copy a calendar source holds still wins when it came later, and an old
invitation read again from an archive never overwrites a newer meeting. Pure; bounded in parts,
bytes and occurrences.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from icalendar import Calendar

from kizuna.errors import BadRecord
from mappings.calendar.events import events_to_activities, revision_of
from mappings.mail.message import own_domain_set
from warehouse.identity.keys.normalize import normalize_email
from warehouse.records import Activity

MAX_CALENDAR_PARTS = 3
"""``text/calendar`` parts of one mail read at most (a real invitation has one)."""
MAX_CALENDAR_BYTES = 1 << 20
MAX_OCCURRENCES = 500
"""Occurrences of a mailed recurring series kept (within a year of the mail)."""
WINDOW_BEFORE = timedelta(days=31)
WINDOW_AFTER = timedelta(days=366)
_CHANGES_MEETINGS = frozenset({"REQUEST", "PUBLISH", "ADD", "CANCEL"})
MAX_KEYS_SHOWN = 50


@dataclass
class Invitation:
    meetings: list[Activity] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    """For the mail: ``calendar_method``, ``meetings`` (keys), ``reply``, ``calendar_error``."""


def read_invitations(
    calendars: list[bytes],
    *,
    own_domains: Collection[str],
    sent_at: datetime,
    tz: tzinfo | str,
) -> Invitation:
    """The meetings the calendar parts of one mail create, update or cancel, and what the
    mail should say about them. A part that cannot be read is noted, never raised: the mail
    itself still lands."""
    out = Invitation()
    methods: list[str] = []
    errors: list[str] = []
    for data in calendars[:MAX_CALENDAR_PARTS]:
        if len(data) > MAX_CALENDAR_BYTES:
            errors.append(f"calendar part of {len(data):,} bytes (limit {MAX_CALENDAR_BYTES:,})")
            continue
        method = _method(data)
        if method:
            methods.append(method)
        if method in _CHANGES_MEETINGS or method is None:
            try:
                found = events_to_activities(
                    data,
                    own_domains=own_domain_set(own_domains),
                    window_start=sent_at - WINDOW_BEFORE,
                    window_end=sent_at + WINDOW_AFTER,
                    default_tz=tz,
                    max_occurrences=MAX_OCCURRENCES,
                )
            except BadRecord as exc:
                errors.append(exc.reason)
                continue
            out.meetings.extend(_sent_version(m, sent_at) for m in found)
        else:
            reply = _answer(data)
            if reply:
                out.attributes["reply"] = reply
                out.attributes.setdefault("meetings", []).append(f"meeting:{reply['uid']}"[:500])
    if methods:
        out.attributes["calendar_method"] = methods[0]
    if out.meetings:
        keys = list(dict.fromkeys(m.key for m in out.meetings))
        out.attributes["meetings"] = keys[:MAX_KEYS_SHOWN]
        if len(keys) > MAX_KEYS_SHOWN:
            out.attributes["meetings_total"] = len(keys)
    if errors:
        out.attributes["calendar_error"] = "; ".join(errors)[:500]
    return out


def _calendar(data: bytes) -> Calendar | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Calendar.from_ical(data.decode("utf-8", "replace"))
    except Exception:  # icalendar raises ValueError and friends on broken text
        return None


def _method(data: bytes) -> str | None:
    cal = _calendar(data)
    value = cal.get("METHOD") if cal is not None else None
    return str(value).strip().upper()[:20] or None if value is not None else None


def _sent_version(meeting: Activity, sent_at: datetime) -> Activity:
    """The meeting as of when the mail was sent: its revision's tiebreak is the later of its
    LAST-MODIFIED and the mail's Date."""
    attrs = meeting.attributes
    modified = attrs.get("last_modified")
    changed = sent_at
    if isinstance(modified, str):
        with contextlib.suppress(TypeError, ValueError):
            changed = max(changed, datetime.fromisoformat(modified))
    sequence = attrs.get("sequence")
    revision = revision_of(sequence if isinstance(sequence, int) else 0, changed)
    return meeting.model_copy(
        update={"revision": revision, "attributes": {**attrs, "from_mail": True}}
    )


def _answer(data: bytes) -> dict[str, Any] | None:
    """An attendee's answer (REPLY): the event's UID, who answered and how."""
    cal = _calendar(data)
    if cal is None:
        return None
    for ev in cal.walk("VEVENT")[:1]:
        uid = str(ev.get("UID") or "").strip()
        attendees = ev.get("ATTENDEE")
        first = attendees[0] if isinstance(attendees, list) and attendees else attendees
        if not uid or first is None:
            return None
        who = normalize_email(str(first).removeprefix("mailto:").removeprefix("MAILTO:"))
        partstat = str(getattr(first, "params", {}).get("PARTSTAT", "")).upper()[:20]
        return {"uid": uid[:400], "attendee": who, "partstat": partstat or None}
    return None
