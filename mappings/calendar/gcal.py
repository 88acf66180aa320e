"""A Google Calendar event resource → a meeting activity, keyed like every calendar source.

Keys follow :mod:`mappings.calendar.events`: ``meeting:<iCalUID>`` for a single event and
``meeting:<iCalUID>/<original start, UTC>`` (or ``/<date>`` all day) for an instance of a
recurring event — Google gives instances the series' ``iCalUID`` and their
``originalStartTime``, which is the RECURRENCE-ID a CalDAV copy of the same meeting carries.
Revisions use the same SEQUENCE/last-modified packing, so the newest copy wins whichever
source wrote it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from connectors.files.ical_zones import zone_named
from kizuna.errors import BadRecord
from mappings.calendar.events import api_meeting_key, meeting_direction, revision_of
from mappings.mail.message import is_internal, own_domain_set
from mappings.mail.mime import snippet
from warehouse.identity.keys.normalize import normalize_email
from warehouse.records import Activity, Participant

_RESPONSES = {
    "accepted": "accepted",
    "declined": "declined",
    "tentative": "tentative",
    "needsaction": "needs-action",
}
_NAME_CHARS = 400


def _zone(name: Any, default: tzinfo) -> tzinfo:
    """The event's ``timeZone`` (IANA, or a Windows name through the CLDR table); an unknown
    name raises ``ValueError`` rather than reading the time in some other zone."""
    if isinstance(name, str) and name:
        found = zone_named(name)
        if found is None:
            raise ValueError(f"timeZone {name!r} is no known time zone")
        return found
    return default


def _when(value: Any, tz: tzinfo) -> tuple[datetime, bool] | None:
    """(instant in UTC, all-day) of an ``EventDateTime`` (``dateTime`` or ``date``).

    Raises ``ValueError`` when the time needs its ``timeZone`` and that zone is unknown."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("dateTime"), str):
        try:
            dt = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=_zone(value.get("timeZone"), tz))
        return dt.astimezone(UTC), False
    if isinstance(value.get("date"), str):
        try:
            d = date.fromisoformat(value["date"])
        except ValueError:
            return None
        return datetime.combine(d, time(0), _zone(value.get("timeZone"), tz)).astimezone(UTC), True
    return None


def _updated(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _participants(ev: dict[str, Any], own: frozenset[str]) -> tuple[list[Participant], list[str]]:
    parts: list[Participant] = []
    rooms: list[str] = []
    org = ev.get("organizer") or {}
    org_email = normalize_email(str(org.get("email") or "")) if isinstance(org, dict) else None
    # A calendar (not a person) can organise: its id ends in calendar.google.com.
    if org_email and not org_email.endswith("calendar.google.com"):
        parts.append(
            Participant(
                email=org_email,
                name=(str(org.get("displayName") or "")[:_NAME_CHARS] or None),
                role="organizer",
                internal=is_internal(org_email, own),
            )
        )
    for att in ev.get("attendees") or []:
        if not isinstance(att, dict):
            continue
        email = normalize_email(str(att.get("email") or ""))
        name = str(att.get("displayName") or "")[:_NAME_CHARS] or None
        if att.get("resource"):
            rooms.append(name or str(att.get("email") or ""))
            continue
        if email is None or email == org_email:
            continue
        response = str(att.get("responseStatus") or "").lower()
        parts.append(
            Participant(
                email=email,
                name=name,
                role="attendee",
                response=_RESPONSES.get(response),
                internal=is_internal(email, own),
            )
        )
    return parts, rooms


def event_activity(
    ev: dict[str, Any], *, own_domains: Collection[str], default_tz: str = "Asia/Tokyo"
) -> Activity:
    """One event (a single event or an instance of a recurring one) as a meeting activity."""
    gid = str(ev.get("id") or "")
    uid = str(ev.get("iCalUID") or "")
    if not gid or not uid:
        raise BadRecord("calendar event without id or iCalUID", source_id=gid or None)
    tz = ZoneInfo(default_tz)
    try:
        start = _when(ev.get("start"), tz)
        end = _when(ev.get("end"), tz)
    except ValueError as exc:
        raise BadRecord(f"calendar event {gid}: {exc}", source_id=gid) from None
    if start is None:
        raise BadRecord(f"calendar event {gid} has no readable start", source_id=gid)
    starts, all_day = start
    ends = end[0] if end else (starts + timedelta(days=1) if all_day else None)
    if ends is not None and ends < starts:
        raise BadRecord(f"calendar event {gid} ends before it starts", source_id=gid)
    recurring = bool(ev.get("recurringEventId"))
    if recurring:
        original = ev.get("originalStartTime") or ev.get("start")
        if isinstance(original, dict) and isinstance(original.get("date"), str):
            tag = original["date"]
        else:
            try:
                when = _when(original, tz)
            except ValueError as exc:
                raise BadRecord(f"instance {gid}: {exc}", source_id=gid) from None
            if when is None:
                raise BadRecord(f"instance {gid} has no original start", source_id=gid)
            tag = when[0].strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        tag = None
    parts, rooms = _participants(ev, own_domain_set(own_domains))
    attributes: dict[str, Any] = {"uid": uid}
    zone = (ev.get("start") or {}).get("timeZone")
    if zone:
        attributes["tzid"] = str(zone)
    if all_day:
        attributes["all_day"] = True
    if recurring:
        attributes["recurring"] = True
    if rooms:
        attributes["rooms"] = rooms
    if ev.get("htmlLink"):
        attributes["url"] = str(ev["htmlLink"])
    if ev.get("hangoutLink"):
        attributes["online"] = True
    sequence = int(ev.get("sequence") or 0)
    if sequence:
        attributes["sequence"] = sequence
    updated = _updated(ev.get("updated"))
    if updated is not None:
        attributes["last_modified"] = updated.isoformat()
    status = {"tentative": "tentative", "cancelled": "cancelled"}.get(
        str(ev.get("status") or ""), "confirmed"
    )
    description = ev.get("description")
    return Activity(
        source_id=gid,
        key=api_meeting_key(uid, tag),
        kind="meeting",
        occurred_at=starts,
        ends_at=ends,
        direction=meeting_direction(parts),
        subject=(str(ev.get("summary") or "").strip() or None),
        snippet=snippet(description) if isinstance(description, str) and description else None,
        thread_key=uid[:500],
        location=(str(ev.get("location") or "").strip() or None),
        status=status,
        revision=revision_of(sequence, updated),
        participants=parts,
        attributes=attributes,
    )
