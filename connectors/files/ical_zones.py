"""Time zones in calendar files: names resolved the way exporters write them, never guessed.

Exporters name zones three ways: IANA names (``Asia/Tokyo``), Windows names from Outlook and
Exchange (``Tokyo Standard Time``), and vendor-prefixed ids (``/mozilla.org/…/Asia/Tokyo``).
icalendar's zone provider resolves all three, Windows names through the CLDR ``windowsZones``
table it ships, so this module never keeps its own list.

Two things a parser leaves silently wrong are made explicit here:

- **X-WR-TIMEZONE** (Google and Apple exports): a calendar-wide zone for floating times (and
  the zone in which UTC times of a series repeat). :func:`standardize` rewrites such a
  calendar into plain RFC 5545 with the ``x_wr_timezone`` package (the one
  recurring-ical-events uses), with a VTIMEZONE; ``ical_split.parse`` applies it to every
  calendar it reads, so UIDs derived from times, the split and the mapping all agree.
- **An unknown TZID** (no VTIMEZONE for it and not a zone name): the parser leaves a naive
  time, which would be read in the workspace's zone, hours off. :func:`zone_problem` names it
  so the event is quarantined instead.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, tzinfo
from typing import Any

import x_wr_timezone
from icalendar import Calendar, Component
from icalendar.error import GloballyUniqueTZIDGuessed
from icalendar.timezone import tzp

X_WR_TIMEZONE = "X-WR-TIMEZONE"
TIME_PROPERTIES = ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "EXDATE", "RDATE")


def zone_named(name: str) -> tzinfo | None:
    """The zone an IANA, Windows or vendor-prefixed name stands for, or ``None``."""
    name = name.strip().strip('"')
    if not name:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
        try:
            return tzp.timezone(name)
        except (ValueError, KeyError, OSError):  # a malformed name is unknown, not an error
            return None


def calendar_zone(cal: Calendar) -> tuple[str, tzinfo | None] | None:
    """``(name, zone)`` of the calendar's X-WR-TIMEZONE; ``None`` when it has none."""
    value = cal.get(X_WR_TIMEZONE)
    if isinstance(value, list):
        value = value[0] if value else None
    name = str(value or "").strip()
    if not name:
        return None
    return name, zone_named(name)


def standardize(cal: Calendar) -> Calendar:
    """``cal`` with its X-WR-TIMEZONE applied (floating and UTC times moved into that zone,
    a VTIMEZONE added); unchanged when it has none or when the zone is unknown (then
    :func:`zone_problem` quarantines the events that depend on it)."""
    found = calendar_zone(cal)
    if found is None or found[1] is None:
        return cal
    out = x_wr_timezone.to_standard(cal, timezone=found[1], add_timezone_component=True)
    return out if isinstance(out, Calendar) else cal


def zone_problem(ev: Component, unknown_calendar_zone: str | None = None) -> str | None:
    """Why the event's times cannot be placed, or ``None``.

    A time with a TZID that neither a VTIMEZONE nor a zone name resolves; with
    ``unknown_calendar_zone`` (an X-WR-TIMEZONE that is no zone), a floating time.
    """
    for name in TIME_PROPERTIES:
        for prop in _values(ev.get(name)):
            params = getattr(prop, "params", None) or {}
            tzid = str(params.get("TZID") or "").strip()
            for value in _times(prop):
                if not isinstance(value, datetime) or value.tzinfo is not None:
                    continue
                if tzid:
                    return (
                        f"{name} has TZID {tzid!r}, which is no known time zone (no VTIMEZONE "
                        "for it in the file, and not an IANA or Windows zone name)"
                    )
                if unknown_calendar_zone is not None:
                    return (
                        f"{name} is a floating time and the calendar's X-WR-TIMEZONE "
                        f"{unknown_calendar_zone!r} is no known time zone"
                    )
    return None


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _times(prop: Any) -> list[date]:
    """The date/date-time values of one property (EXDATE and RDATE hold lists)."""
    try:
        dts = getattr(prop, "dts", None)
        if dts is not None:
            out = [getattr(d, "dt", None) for d in dts]
        else:
            out = [getattr(prop, "dt", None)]
    except Exception:  # a broken property is another check's business
        return []
    return [v[0] if isinstance(v, tuple) else v for v in out if v is not None]
