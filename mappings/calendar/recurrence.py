"""Recurring events expanded with ``recurring_ical_events``, inside limits, with the cuts told.

Three things the library leaves to its caller are decided here:

- **Limits before work**: an empty or sub-daily RRULE is judged before any expansion; a
  series stops being expanded the moment it passes ``max_occurrences`` in the window.
- **The history horizon**: only occurrences inside the window are stored. Occurrences of a
  series that fall before the window's start are counted (bounded by the same cap) and told
  as a note against the event, so a person sees what the horizon cut and which setting keeps
  it; nothing older is dropped silently.
- **Occurrence identity under RANGE=THISANDFUTURE**: the library gives every occurrence after
  such an override the override's own RECURRENCE-ID, so keying occurrences by that property
  would fold a whole tail of the series into one meeting. Each occurrence is keyed by its
  *original* start instead: its start less the override's move (override DTSTART − its
  RECURRENCE-ID), which is what RFC 5545 says the range applies.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import recurring_ical_events
from icalendar import Calendar, Component
from icalendar.error import GloballyUniqueTZIDGuessed

from connectors.files.ical_split import event_uid
from kizuna.errors import BadRecord

MAX_OCCURRENCES = 2000
"""Occurrences one series may produce in the expansion window; more is quarantined."""
SUB_DAILY = frozenset({"SECONDLY", "MINUTELY"})
"""Rules refused by default: one 200-byte event would otherwise mean millions of meetings."""
_HISTORY_FROM = datetime(1900, 1, 1, tzinfo=UTC)
STEPS_PER_OCCURRENCE = 10
"""A rule may step through ``max_occurrences * STEPS_PER_OCCURRENCE`` of its periods from
DTSTART to the window's end (an HOURLY rule from the year 1 would step 17 million hours, and
a rule that never matches, like every 30 February, steps until the window's end)."""
_PERIOD = {
    "YEARLY": timedelta(days=365.25),
    "MONTHLY": timedelta(days=30.44),
    "WEEKLY": timedelta(days=7),
    "DAILY": timedelta(days=1),
    "HOURLY": timedelta(hours=1),
    "MINUTELY": timedelta(minutes=1),
    "SECONDLY": timedelta(seconds=1),
}


@dataclass
class Limits:
    """What one expansion may do, and the zone in which floating times and dates are read."""

    tz: tzinfo
    max_occurrences: int = MAX_OCCURRENCES
    allow_sub_daily: bool = False
    notes: list[tuple[str, str, str]] = field(default_factory=list)
    """``(uid, value, reason)`` for what was kept out without quarantining the event."""


def utc(value: date, tz: tzinfo) -> datetime:
    """An instant in UTC: floating times and dates are read in ``tz``."""
    if isinstance(value, datetime):
        local = value if value.tzinfo is not None else value.replace(tzinfo=tz)
        return local.astimezone(UTC)
    return datetime.combine(value, time(0), tz).astimezone(UTC)


def instant_key(value: date, tz: tzinfo) -> str:
    """How an occurrence's original start appears in its key: UTC seconds, or the date."""
    if isinstance(value, datetime):
        return utc(value, tz).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def without_empty_rules(comp: Component, uid: str, limits: Limits) -> Component:
    """The event without ``RRULE:`` lines that hold no rule, as recurring-ical-events reads
    it (the event happens once); each one dropped is noted. Sub-daily rules are refused."""
    rules = comp.get("RRULE")
    listed = rules if isinstance(rules, list) else [rules] if rules is not None else []
    kept = []
    for rule in listed:
        try:
            freq = rule.get("FREQ")
        except Exception as exc:  # vBroken: icalendar could not read the rule at all
            raise BadRecord(
                f"event {uid!r} has an unreadable RRULE: {type(exc).__name__}: {exc}"[:500],
                source_id=uid,
            ) from None
        freq = (freq[0] if isinstance(freq, list) and freq else freq) or ""
        if not str(freq).strip():
            limits.notes.append(
                (uid, "RRULE:", "empty RRULE (no FREQ) ignored; the event is kept as one meeting")
            )
            continue
        if str(freq).upper() in SUB_DAILY and not limits.allow_sub_daily:
            raise BadRecord(
                f"event {uid!r} repeats {str(freq).upper()}: rules more frequent than hourly "
                "are refused (set allow_sub_daily: true on the source to expand them)",
                source_id=uid,
            )
        kept.append(rule)
    if len(kept) == len(listed):
        return comp
    out = comp.copy()
    out.subcomponents = list(comp.subcomponents)
    del out["RRULE"]
    for rule in kept:
        out.add("RRULE", rule)
    return out


def is_recurring(comps: Iterable[Component]) -> bool:
    return any(k in c for c in comps for k in ("RRULE", "RDATE", "RECURRENCE-ID"))


def expand(
    comps: list[Component], zones: list[Component], start: datetime, end: datetime, lim: Limits
) -> list[tuple[str, Component]]:
    """``(original start key, occurrence)`` for one series between ``start`` and ``end``.

    Raises ``BadRecord`` when the series breaks a limit or cannot be expanded.
    """
    uid = event_uid(comps[0])
    for c in comps:
        _check_steps(c, uid, end, lim)
    sub = Calendar()
    for z in zones:
        sub.add_component(z)
    for c in comps:
        sub.add_component(c)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
            query = recurring_ical_events.of(sub)
            found: list[Any] = []
            older = 0
            for series in query.series:
                # Lazily: the limit stops a flood before it is built.
                for occ in series.between(query.to_datetime(start), query.to_datetime(end)):
                    found.append(occ)
                    if len(found) > lim.max_occurrences:
                        raise BadRecord(
                            f"recurring event {uid!r} has more than {lim.max_occurrences} "
                            "occurrences in the expansion window (raise max_occurrences on "
                            "the source to keep them)",
                            source_id=uid,
                        )
                older += _count_before(series, query, start, lim)
            occurrences = [o.as_component(query.keep_recurrence_attributes) for o in found]
    except BadRecord:
        raise
    except Exception as exc:  # bad RRULE, period ending before it starts, …
        raise BadRecord(
            f"cannot expand recurring event {uid!r}: {type(exc).__name__}: {exc}", source_id=uid
        ) from None
    if older:
        horizon = start.astimezone(lim.tz).date().isoformat()
        many = f"more than {lim.max_occurrences}" if older > lim.max_occurrences else str(older)
        lim.notes.append(
            (
                uid,
                f"{many} before {horizon}",
                f"{many} older occurrence(s) fall before the history horizon {horizon} "
                f"({_zone_name(lim.tz)}) and are not stored; raise expand_past_days on the "
                "source to keep them",
            )
        )
    moves = _moves(comps, lim.tz)
    return [(original_key(o, moves, lim.tz), o) for o in occurrences]


def _check_steps(comp: Component, uid: str, end: datetime, lim: Limits) -> None:
    """Refuse, before expanding, a rule whose iteration from DTSTART to the window's end (or
    its UNTIL) would take more steps than the limit: the work a rule causes is set by its
    periods, not by the occurrences it yields."""
    rules = comp.get("RRULE")
    start = getattr(comp.get("DTSTART"), "dt", None)
    if rules is None or not isinstance(start, date):
        return
    begin = utc(start, lim.tz)
    limit = lim.max_occurrences * STEPS_PER_OCCURRENCE
    for rule in rules if isinstance(rules, list) else [rules]:
        freq = str((rule.get("FREQ") or [""])[0]).upper()
        period = _PERIOD.get(freq)
        if period is None:
            continue
        try:
            interval = max(int((rule.get("INTERVAL") or [1])[0]), 1)
        except (TypeError, ValueError):
            interval = 1
        stop = end
        for until in rule.get("UNTIL") or []:
            if isinstance(until, date):
                stop = min(stop, utc(until, lim.tz))
        steps = (stop - begin) / (period * interval)
        if steps > limit:
            raise BadRecord(
                f"recurring event {uid!r} repeats {freq} from {begin.date().isoformat()}: "
                f"reaching the window takes {int(steps):,} steps, more than {limit:,} (give it "
                "a later DTSTART, or raise max_occurrences on the source)",
                source_id=uid,
            )


def _count_before(series: Any, query: Any, start: datetime, lim: Limits) -> int:
    """Occurrences that begin before ``start`` (at most ``max_occurrences + 1`` are counted)."""
    n = 0
    for occ in series.between(query.to_datetime(_HISTORY_FROM), query.to_datetime(start)):
        if utc(occ.start, lim.tz) >= start:  # overlaps the window's start: it is stored
            continue
        n += 1
        if n > lim.max_occurrences:
            break
    return n


def _this_and_future(prop: Any) -> bool:
    params = getattr(prop, "params", None) or {}
    return str(params.get("RANGE") or "").upper() == "THISANDFUTURE"


def _moves(comps: list[Component], tz: tzinfo) -> dict[str, timedelta]:
    """RECURRENCE-ID key → how far a RANGE=THISANDFUTURE override moves its occurrences."""
    out: dict[str, timedelta] = {}
    for c in comps:
        rid, start = c.get("RECURRENCE-ID"), c.get("DTSTART")
        if rid is None or start is None or not _this_and_future(rid):
            continue
        out[instant_key(rid.dt, tz)] = utc(start.dt, tz) - utc(rid.dt, tz)
    return out


def original_key(occ: Component, moves: dict[str, timedelta], tz: tzinfo) -> str:
    """The occurrence's original start as a key (see the module docstring)."""
    rid = occ.get("RECURRENCE-ID") or occ.get("DTSTART")
    if rid is None:
        raise BadRecord(f"event {event_uid(occ)!r} has no DTSTART", source_id=event_uid(occ))
    if not _this_and_future(rid):
        return instant_key(rid.dt, tz)
    move = moves.get(instant_key(rid.dt, tz), timedelta(0))
    start: Any = occ["DTSTART"]
    original = utc(start.dt, tz) - move
    if isinstance(rid.dt, datetime):
        return original.strftime("%Y-%m-%dT%H:%M:%SZ")
    return original.astimezone(tz).date().isoformat()


def _zone_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)
