"""The calendar fidelity of issue 16 through the ``caldav`` source on a real Radicale: a
RANGE=THISANDFUTURE override, X-WR-TIMEZONE, a Windows zone name, an unknown TZID, the history
horizon and the occurrence cap (now configurable on CalDAV sources too)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from flows.engine import run_stream
from flows.sources import caldav as source_caldav
from flows.workspace import Company, Workspace
from tests.flows.sources.calendar.test_calendar_containment import _cal, _quarantine
from tests.support.servers import Radicale
from warehouse import schema as t

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # window [2025-09-01, 2026-06-08) in Asia/Tokyo

RESOURCES = {
    "weekly.ics": _cal(
        """BEGIN:VEVENT
UID:weekly@example.com
DTSTART;TZID=Asia/Tokyo:20260105T100000
DURATION:PT1H
RRULE:FREQ=WEEKLY;COUNT=20
SUMMARY:weekly
END:VEVENT
BEGIN:VEVENT
UID:weekly@example.com
SEQUENCE:1
RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Asia/Tokyo:20260216T100000
DTSTART;TZID=Asia/Tokyo:20260216T140000
DURATION:PT1H
SUMMARY:weekly
END:VEVENT"""
    ),
    "google.ics": _cal(
        """BEGIN:VEVENT
UID:google@example.com
DTSTART:20260310T100000
DTEND:20260310T110000
SUMMARY:google
END:VEVENT"""
    ).replace("PRODID:-//t//EN", "PRODID:-//t//EN\r\nX-WR-TIMEZONE:Europe/Berlin"),
    "outlook.ics": _cal(
        """BEGIN:VEVENT
UID:outlook@example.com
DTSTART;TZID=Tokyo Standard Time:20260311T100000
SUMMARY:outlook
END:VEVENT"""
    ),
    "atlantis.ics": _cal(
        """BEGIN:VEVENT
UID:atlantis@example.com
DTSTART;TZID=Nowhere/Atlantis:20260311T100000
SUMMARY:atlantis
END:VEVENT"""
    ),
    "old.ics": _cal(
        """BEGIN:VEVENT
UID:old@example.com
DTSTART:20250106T100000Z
DURATION:PT1H
RRULE:FREQ=WEEKLY;COUNT=60
SUMMARY:old
END:VEVENT"""
    ),
    "hourly.ics": _cal(
        """BEGIN:VEVENT
UID:hourly@example.com
DTSTART:20260101T000000Z
RRULE:FREQ=HOURLY
SUMMARY:hourly
END:VEVENT"""
    ),
}


def test_caldav_calendar_fidelity(engine: Engine, radicale_server: Radicale) -> None:
    url, user = radicale_server.new_calendar()
    for name, ics in RESOURCES.items():
        radicale_server.put(url, user, name, ics)
    ws = Workspace(company=Company(name="絆", domains=["kizuna.example"]))
    cfg = source_caldav.Config(
        url=radicale_server.url, username=user, calendars=[url], max_occurrences=500
    )
    (spec,) = source_caldav.streams("team", cfg, ws, now=NOW)
    run_stream(engine, spec, "run-1")
    a = t.Activity
    with engine.connect() as conn:
        rows = conn.execute(select(a.key, a.occurred_at, a.subject).order_by(a.occurred_at)).all()
    at: dict[str, list[datetime]] = {}
    keys: set[str] = set()
    for key, when, subject in rows:
        at.setdefault(subject, []).append(when if when.tzinfo else when.replace(tzinfo=UTC))
        keys.add(key)
    assert len(keys) == len(rows)
    assert [w.hour for w in at["weekly"]] == [1] * 6 + [5] * 14  # 20 meetings, 14 moved
    assert at["google"] == [datetime(2026, 3, 10, 9, 0, tzinfo=UTC)]
    assert at["outlook"] == [datetime(2026, 3, 11, 1, 0, tzinfo=UTC)]
    assert len(at["old"]) == 26
    assert "atlantis" not in at and "hourly" not in at
    base = "/" + url.split("/", 3)[3]
    reasons = {path: reason for _, reason, path in _quarantine(engine)}
    assert set(reasons) == {base + "atlantis.ics", base + "old.ics", base + "hourly.ics"}
    assert "'Nowhere/Atlantis'" in reasons[base + "atlantis.ics"]
    assert "34 older occurrence(s)" in reasons[base + "old.ics"]
    assert "more than 500 occurrences" in reasons[base + "hourly.ics"]
