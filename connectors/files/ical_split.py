"""One iCalendar text per event: the unit every calendar connector pages in.

A calendar file (or a CalDAV collection, or an iTIP message) holds many events, and one event
(a UID) may be spread over several components — the series, its moved or cancelled
instances — and over several files (an update mailed as its own ``.ics``). Connectors page
per UID so the engine can hash, skip, quarantine and delete events one at a time; this module
does that grouping with no I/O, so file, CalDAV and mail connectors share it.

Within a UID, two components for the same instance (the same RECURRENCE-ID, or two series
masters) are resolved the iCalendar way: the higher SEQUENCE wins, then the later
LAST-MODIFIED, then the later DTSTAMP, then the later input. ``METHOD:CANCEL`` applies only to
the components of its own calendar, so it is folded into ``STATUS:CANCELLED`` on them before
calendars are merged. A calendar-wide ``X-WR-TIMEZONE`` is applied first (see
``ical_zones``), since the per-UID texts no longer carry it; an event whose times no zone
places (an unknown TZID) is reported broken rather than read in some default zone.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from icalendar import Calendar, Component
from icalendar.error import GloballyUniqueTZIDGuessed

from connectors.files.ical_zones import calendar_zone, standardize, zone_problem

PRODID = "-//Kizuna//ical split//EN"


def parse(data: bytes | str) -> list[Calendar]:
    """Every VCALENDAR in ``data``; raises ``ValueError`` when the text is not iCalendar.

    Bytes are UTF-8 (a BOM is allowed), else Shift_JIS/cp932. A file holding one bare
    VEVENT (no VCALENDAR around it) is read as a calendar of that event.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            # iCalendar is UTF-8, but older Japanese groupware exports Shift_JIS (read as
            # cp932, its Windows superset); anything else stays an error.
            text = data.decode("cp932")
    else:
        text = data
    data = text.lstrip("\ufeff")
    if "BEGIN:VCALENDAR" not in data.upper():
        if not data.lstrip()[:12].upper() == "BEGIN:VEVENT":
            raise ValueError("no BEGIN:VCALENDAR in the text")
        # A bare VEVENT (some tools save one event per file so): read it as its calendar.
        data = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{PRODID}\r\n{data.strip()}\r\nEND:VCALENDAR\r\n"
    try:
        with warnings.catch_warnings():
            # '/mozilla.org/…/Europe/Berlin' style TZIDs are common and guessed right.
            warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
            cals = Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # icalendar raises ValueError, KeyError, IndexError on junk
        raise ValueError(f"not valid iCalendar: {type(exc).__name__}: {exc}") from None
    out = [c for c in cals if isinstance(c, Calendar)]
    if not out:
        raise ValueError("no VCALENDAR component in the text")
    try:
        # Applied here, once, so every reader (UIDs, split, mapping) sees the same times.
        return [standardize(c) for c in out]
    except Exception as exc:  # a zone the rewrite cannot express
        raise ValueError(f"cannot apply X-WR-TIMEZONE: {type(exc).__name__}: {exc}") from None


def event_uid(event: Component) -> str:
    """The event's UID; an event without one gets a stable id derived from its content.

    Never raises: a doubled or unreadable property still gives an id, so the event can be
    quarantined under it instead of failing its whole file.
    """
    uid = event.get("UID")
    if isinstance(uid, list):
        uid = uid[0] if uid else None
    text = str(uid or "").strip()
    if text:
        return text
    digest = hashlib.blake2b(digest_size=10)
    for name in ("DTSTART", "SUMMARY", "RRULE"):
        values = event.get(name)
        for v in values if isinstance(values, list) else [values] if values is not None else []:
            try:
                digest.update(_bytes(v.to_ical()))
            except Exception:  # a broken value: its text as written still identifies it
                digest.update(str(v).encode("utf-8", "surrogatepass"))
    return "nouid-" + digest.hexdigest()


def uids(cals: Iterable[Calendar]) -> list[str]:
    """The UIDs of every VEVENT, in order of appearance, without repeats."""
    seen: dict[str, None] = {}
    for cal in cals:
        for ev in _events(cal):
            seen.setdefault(event_uid(ev), None)
    return list(seen)


def is_recurring(ics: str | bytes) -> bool:
    """True when the event's expansion depends on a window (RRULE, RDATE or overrides)."""
    text = ics.decode("utf-8", errors="replace") if isinstance(ics, bytes) else ics
    for line in text.splitlines():
        name = line.split(":", 1)[0].split(";", 1)[0].strip().upper()
        if name in ("RRULE", "RDATE", "RECURRENCE-ID"):
            return True
    return False


def split_by_uid(
    *sources: str | bytes | Calendar, errors: dict[str, str] | None = None
) -> dict[str, str]:
    """One VCALENDAR text per UID (with the VTIMEZONEs it refers to), in order of appearance.

    Accepts several calendars so a UID spread over files comes out as one text. Raises
    ``ValueError`` for a source that is not iCalendar. Output is deterministic for equal
    input, so its hash is a sound "unchanged" test. An event without a UID is given its
    derived id (see :func:`event_uid`) as UID, so every later reader keys it the same way.

    With ``errors``, an event that cannot be handled (an unreadable DTSTAMP, two
    RECURRENCE-ID lines, …) is left out and its UID → reason recorded there, so one broken
    event never stops the others; without it the first such error raises ``ValueError``.
    """
    broken: dict[str, str] = {}
    cals: list[Calendar] = []
    for src in sources:
        cals.extend([src] if isinstance(src, Calendar) else parse(src))
    zones: dict[str, Component] = {}
    picked: dict[str, dict[str, tuple[tuple[Any, ...], Component]]] = {}
    meta: dict[str, str] = {}
    order = 0
    for cal in cals:
        found = calendar_zone(cal)
        unknown_zone = found[0] if found is not None and found[1] is None else None
        for tz in cal.walk("VTIMEZONE"):
            tzid = str(tz.get("TZID") or "")
            if tzid and tzid not in zones:
                zones[tzid] = tz
        if "CALSCALE" in cal and "CALSCALE" not in meta:
            meta["CALSCALE"] = str(cal["CALSCALE"])
        cancel = str(cal.get("METHOD") or "").upper() == "CANCEL"
        for ev in _events(cal):
            order += 1
            uid = event_uid(ev)
            if uid in broken:
                continue
            try:
                why = zone_problem(ev, unknown_zone)
                if why is not None:
                    broken[uid] = f"event {uid!r}: {why}"
                    continue
                ev = _prepared(ev, uid, cancel)
                rid = _recurrence_id(ev)
                rank = (*_rank(ev), order)
            except Exception as exc:  # icalendar's BrokenCalendarProperty and friends
                broken[uid] = _why(exc)
                continue
            slot = picked.setdefault(uid, {})
            if rid not in slot or rank >= slot[rid][0]:
                slot[rid] = (rank, ev)
    out: dict[str, str] = {}
    for uid, slot in picked.items():
        if uid in broken:
            continue
        comps = [slot[k][1] for k in sorted(slot)]
        cal = Calendar()
        cal.add("PRODID", PRODID)
        cal.add("VERSION", "2.0")
        if "CALSCALE" in meta:
            cal.add("CALSCALE", meta["CALSCALE"])
        try:
            for tzid in sorted({t for c in comps for t in _tzids(c)}):
                if tzid in zones:
                    cal.add_component(zones[tzid])
            for c in comps:
                cal.add_component(c)
            out[uid] = cal.to_ical().decode("utf-8")
        except Exception as exc:
            broken[uid] = _why(exc)
    if broken and errors is None:
        uid, why = next(iter(broken.items()))
        raise ValueError(f"event {uid!r}: {why}")
    if errors is not None:
        errors.update(broken)
    return out


def _why(exc: Exception) -> str:
    return f"unreadable event: {type(exc).__name__}: {exc}"[:500]


def _prepared(ev: Component, uid: str, cancel: bool) -> Component:
    """The event as it is stored: with its (derived) UID, and cancelled under METHOD:CANCEL."""
    needs_uid = "UID" not in ev
    needs_cancel = cancel and str(ev.get("STATUS") or "").upper() != "CANCELLED"
    if not needs_uid and not needs_cancel:
        return ev
    ev = ev.copy()
    ev.subcomponents = list(ev.subcomponents)
    if needs_uid:
        ev.add("UID", uid)
    if needs_cancel:
        if "STATUS" in ev:
            del ev["STATUS"]
        ev.add("STATUS", "CANCELLED")
    return ev


def _recurrence_id(ev: Component) -> str:
    rid = ev.get("RECURRENCE-ID")
    if rid is None:
        return ""
    if isinstance(rid, list):
        raise ValueError(f"{len(rid)} RECURRENCE-ID lines in one event")
    return _bytes(rid.to_ical()).decode()


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _events(cal: Calendar) -> list[Component]:
    return [c for c in cal.subcomponents if c.name == "VEVENT"]


def _utc_key(value: Any) -> str:
    if isinstance(value, list):
        raise ValueError("a date-time property given twice")
    dt = getattr(value, "dt", None)
    if isinstance(dt, datetime):
        return (dt if dt.tzinfo is None else dt.astimezone(UTC)).strftime("%Y%m%dT%H%M%S")
    if isinstance(dt, date):
        return dt.strftime("%Y%m%d")
    return ""


def _rank(ev: Component) -> tuple[int, str, str]:
    try:
        seq = int(ev.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        seq = 0
    return (seq, _utc_key(ev.get("LAST-MODIFIED")), _utc_key(ev.get("DTSTAMP")))


def _tzids(comp: Component) -> set[str]:
    found: set[str] = set()
    for _, value in comp.property_items(recursive=False, sorted=False):
        for v in value if isinstance(value, list) else [value]:
            params = getattr(v, "params", None)
            if params and params.get("TZID"):
                found.add(str(params["TZID"]))
    return found
