"""Microsoft Graph JSON → activities: messages through the one mail parser, events as meetings.

Messages: Graph gives the transport headers (``internetMessageHeaders``) for received mail and
JSON fields for everything; the headers — or, where Graph has none (sent items), headers
written from the JSON fields — are parsed by :func:`mappings.mail.message.parse_message`, so the key
(``mail:<Message-ID>``), thread and direction agree with the same mail seen through IMAP or
Gmail. ``bodyPreview`` gives the snippet unless the source is headers-only.

Events: keys follow :mod:`mappings.calendar.events` — ``meeting:<UID>`` for a single event,
``meeting:<UID>/<original start in UTC>`` for an occurrence. Graph's ``iCalUId`` is Exchange's
GlobalObjectId in hex, and differs per occurrence (the instance date sits in bytes 16–19): the
series UID is that id with the date zeroed, or — for a meeting that came from another system
— the UID it wraps (``vCal-Uid``), which is what Google or a CalDAV server call the meeting.
"""

from __future__ import annotations

import binascii
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formataddr
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kizuna.errors import BadRecord
from mappings.calendar.events import api_meeting_key, meeting_direction, revision_of
from mappings.mail.gmail import header_block
from mappings.mail.message import is_internal, own_domain_set, parse_message
from mappings.mail.mime import snippet
from warehouse.identity.keys.normalize import normalize_email
from warehouse.records import Activity, Participant

_GOID_CLASS = bytes.fromhex("040000008200E00074C5B7101A82E008")
_VCAL_UID = b"vCal-Uid\x01\x00\x00\x00"
_RESPONSES = {
    "accepted": "accepted",
    "declined": "declined",
    "tentativelyaccepted": "tentative",
    "notresponded": "needs-action",
    "none": "needs-action",
}


# -- messages ----------------------------------------------------------------------------


def _address(value: Any) -> tuple[str, str] | None:
    ea = (value or {}).get("emailAddress") if isinstance(value, dict) else None
    if not isinstance(ea, dict):
        return None
    addr = normalize_email(str(ea.get("address") or ""))
    if addr is None:  # an Exchange X.500 address or an empty one: nothing to link
        return None
    return str(ea.get("name") or ""), addr


def _synthesised_headers(msg: dict[str, Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if msg.get("internetMessageId"):
        out.append({"name": "Message-ID", "value": str(msg["internetMessageId"])})
    sender = _address(msg.get("from")) or _address(msg.get("sender"))
    if sender:
        out.append({"name": "From", "value": formataddr(sender)})
    for field, header in (("toRecipients", "To"), ("ccRecipients", "Cc"), ("bccRecipients", "Bcc")):
        addrs = [a for a in (_address(x) for x in msg.get(field) or []) if a]
        if addrs:
            out.append({"name": header, "value": ", ".join(formataddr(a) for a in addrs)})
    if msg.get("subject"):
        out.append({"name": "Subject", "value": str(msg["subject"])})
    when = _instant(msg.get("sentDateTime")) or _instant(msg.get("receivedDateTime"))
    if when is not None:
        out.append({"name": "Date", "value": format_datetime(when)})
    return out


def message_activity(
    msg: dict[str, Any], *, own_domains: Collection[str], headers_only: bool = False
) -> Activity:
    """One Graph message (delta JSON) as an email activity."""
    gid = str(msg.get("id") or "")
    if not gid:
        raise BadRecord("Graph message without an id")
    transport = msg.get("internetMessageHeaders")
    headers = transport if isinstance(transport, list) and transport else None
    if headers is None:
        headers = _synthesised_headers(msg)
    elif not any(str(h.get("name", "")).lower() == "message-id" for h in headers):
        headers = [*headers, *_synthesised_headers(msg)[:1]]
    act = parse_message(header_block(headers), own_domains=own_domains, headers_only=True)
    attributes = dict(act.attributes)
    attributes.pop("content_type", None)
    if "hasAttachments" in msg:
        attributes["has_attachments"] = bool(msg["hasAttachments"])
    attributes["graph"] = {
        "conversation_id": msg.get("conversationId"),
        "categories": list(msg.get("categories") or []),
    }
    update: dict[str, Any] = {"source_id": gid, "attributes": attributes}
    preview = msg.get("bodyPreview")
    if not headers_only and isinstance(preview, str) and preview.strip():
        update["snippet"] = snippet(preview)
    return act.model_copy(update=update)


# -- events ------------------------------------------------------------------------------


def series_uid(ical_uid: str) -> str:
    """The iCalendar UID of the series an Exchange ``iCalUId`` belongs to (see module doc)."""
    try:
        raw = binascii.unhexlify(ical_uid)
    except (binascii.Error, ValueError):
        return ical_uid
    if len(raw) < 40 or not raw.startswith(_GOID_CLASS):
        return ical_uid
    size = int.from_bytes(raw[36:40], "little")
    data = raw[40 : 40 + size]
    if data.startswith(_VCAL_UID):
        inner = data[len(_VCAL_UID) :].split(b"\x00", 1)[0]
        try:
            text = inner.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if text:
            return text
    return (raw[:16] + b"\x00\x00\x00\x00" + raw[20:]).hex().upper()


def _instant(value: Any) -> datetime | None:
    """Graph's ``DateTimeOffset`` strings (``2026-03-04T01:00:00Z``, 7-digit fractions)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        tail = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{tail}"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _moment(value: Any, default_tz: str) -> datetime | None:
    """A ``dateTimeTimeZone`` (``{"dateTime": ..., "timeZone": "UTC"}``) in UTC."""
    if not isinstance(value, dict):
        return None
    local = _instant(value.get("dateTime"))
    if local is None:
        return None
    zone = str(value.get("timeZone") or "UTC")
    if zone.upper() in ("UTC", "Z", "ETC/UTC"):
        return local
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo(default_tz)
    return local.replace(tzinfo=tz).astimezone(UTC)


def event_activity(
    ev: dict[str, Any], *, own_domains: Collection[str], default_tz: str = "Asia/Tokyo"
) -> Activity:
    """One calendarView event (single instance, occurrence or exception) as a meeting."""
    gid = str(ev.get("id") or "")
    ical = str(ev.get("iCalUId") or "")
    if not gid or not ical:
        raise BadRecord("Graph event without id or iCalUId", source_id=gid or None)
    start = _moment(ev.get("start"), default_tz)
    end = _moment(ev.get("end"), default_tz)
    if start is None:
        raise BadRecord(f"Graph event {gid} has no readable start", source_id=gid)
    all_day = bool(ev.get("isAllDay"))
    uid = series_uid(ical)
    kind = str(ev.get("type") or "singleInstance")
    recurring = kind in ("occurrence", "exception")
    if recurring:
        original = _instant(ev.get("originalStart")) or start
        tag = original.date().isoformat() if all_day else original.strftime("%Y-%m-%dT%H:%M:%SZ")
        if all_day and isinstance(ev.get("start"), dict):
            tag = str(ev["start"].get("dateTime", ""))[:10] or tag
    else:
        tag = None
    own = own_domain_set(own_domains)
    parts: list[Participant] = []
    rooms: list[str] = []
    org = _address(ev.get("organizer"))
    if org:
        parts.append(
            Participant(
                email=org[1],
                name=org[0] or None,
                role="organizer",
                internal=is_internal(org[1], own),
            )
        )
    for att in ev.get("attendees") or []:
        a = _address(att)
        if a is None or (org is not None and a[1] == org[1]):
            continue
        if str(att.get("type") or "").lower() == "resource":
            rooms.append(a[0] or a[1])
            continue
        response = str(((att.get("status") or {}).get("response")) or "none").lower()
        parts.append(
            Participant(
                email=a[1],
                name=a[0] or None,
                role="attendee",
                response=_RESPONSES.get(response),
                internal=is_internal(a[1], own),
            )
        )
    if end is not None and end < start:
        raise BadRecord(f"Graph event {gid} ends before it starts", source_id=gid)
    attributes: dict[str, Any] = {"uid": uid, "graph": {"type": kind}}
    if all_day:
        attributes["all_day"] = True
    if recurring:
        attributes["recurring"] = True
    if rooms:
        attributes["rooms"] = rooms
    if ev.get("webLink"):
        attributes["url"] = str(ev["webLink"])
    tz = (ev.get("originalStartTimeZone") or "").strip()
    if tz:
        attributes["tzid"] = tz
    if ev.get("isOnlineMeeting"):
        attributes["online"] = True
    location = (
        (ev.get("location") or {}).get("displayName")
        if isinstance(ev.get("location"), dict)
        else None
    )
    modified = _instant(ev.get("lastModifiedDateTime"))
    status = "cancelled" if ev.get("isCancelled") else "confirmed"
    if status == "confirmed" and str(ev.get("showAs") or "").lower() == "tentative":
        status = "tentative"
    preview = ev.get("bodyPreview")
    return Activity(
        source_id=gid,
        key=api_meeting_key(uid, tag),
        kind="meeting",
        occurred_at=start,
        ends_at=end if end is not None else (start + timedelta(days=1) if all_day else None),
        direction=meeting_direction(parts),
        subject=(str(ev.get("subject") or "").strip() or None),
        snippet=snippet(preview) if isinstance(preview, str) and preview.strip() else None,
        thread_key=uid[:500],
        location=(str(location).strip() or None) if location else None,
        status=status,
        revision=revision_of(0, modified),
        participants=parts,
        attributes=attributes,
    )
