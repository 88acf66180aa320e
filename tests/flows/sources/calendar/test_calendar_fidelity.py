"""Calendar fidelity (issue 16), each through the real engine on SQLite and PostgreSQL:
RANGE=THISANDFUTURE overrides move every later occurrence and keep each its own meeting,
X-WR-TIMEZONE places floating times (and the repeats of UTC ones), Windows zone names are
read through the CLDR table, unknown zones are quarantined, an empty RRULE is one meeting
with a note, and the history horizon tells what it cut."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select

from tests.flows.sources.calendar.test_calendar_containment import (
    GOOD,
    _cal,
    _quarantine,
    _sync,
    _write,
)
from warehouse import schema as t

# NOW is 2026-03-04; the window is [2025-09-01, 2026-06-08) in Asia/Tokyo (see flows.sources.ics).


def _meetings(engine: Engine) -> list[tuple[str, datetime, str]]:
    """Live meetings (a retired one has ``deleted_at``)."""
    a = t.Activity
    with engine.connect() as conn:
        rows = conn.execute(
            select(a.key, a.occurred_at, a.subject)
            .where(a.deleted_at.is_(None))
            .order_by(a.occurred_at)
        )
        return [(k, at if at.tzinfo else at.replace(tzinfo=UTC), s) for k, at, s in rows]


def test_this_and_future_moves_every_later_occurrence(engine: Engine, tmp_path: Path) -> None:
    weekly = """BEGIN:VEVENT
UID:weekly@example.com
DTSTAMP:20260101T000000Z
DTSTART;TZID=Asia/Tokyo:20260105T100000
DURATION:PT1H
RRULE:FREQ=WEEKLY;COUNT=20
SUMMARY:定例
END:VEVENT
BEGIN:VEVENT
UID:weekly@example.com
DTSTAMP:20260110T000000Z
SEQUENCE:1
RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Asia/Tokyo:20260216T100000
DTSTART;TZID=Asia/Tokyo:20260216T140000
DURATION:PT1H
SUMMARY:定例 (午後)
END:VEVENT"""
    _write(tmp_path, "weekly.ics", _cal(weekly))
    _sync(engine, tmp_path)
    rows = _meetings(engine)
    assert len(rows) == 20 and len({k for k, _, _ in rows}) == 20
    before, after = rows[:6], rows[6:]
    assert {at.hour for _, at, _ in before} == {1} and {s for *_, s in before} == {"定例"}
    assert {at.hour for _, at, _ in after} == {5} and {s for *_, s in after} == {"定例 (午後)"}
    # Each occurrence keeps its original start as its key (the moved ones too).
    assert after[-1][0] == "meeting:weekly@example.com/2026-05-18T01:00:00Z"
    assert not _quarantine(engine)
    _sync(engine, tmp_path)
    assert _meetings(engine) == rows


def test_x_wr_timezone_places_floating_and_utc_times(engine: Engine, tmp_path: Path) -> None:
    google = """BEGIN:VEVENT
UID:floating@example.com
DTSTART:20260310T100000
DTEND:20260310T110000
SUMMARY:floating
END:VEVENT
BEGIN:VEVENT
UID:series@example.com
DTSTART:20260302T090000Z
DTEND:20260302T100000Z
RRULE:FREQ=WEEKLY;COUNT=6
SUMMARY:series
END:VEVENT"""
    text = _cal(google).replace("PRODID:-//t//EN", "PRODID:-//t//EN\r\nX-WR-TIMEZONE:Europe/Berlin")
    _write(tmp_path, "google.ics", text)
    outlook = """BEGIN:VEVENT
UID:windows@example.com
DTSTART:20260311T100000
SUMMARY:windows
END:VEVENT"""
    text = _cal(outlook).replace(
        "PRODID:-//t//EN", "PRODID:-//t//EN\r\nX-WR-TIMEZONE:Tokyo Standard Time"
    )
    _write(tmp_path, "outlook.ics", text)
    _sync(engine, tmp_path)
    at = {s: [] for s in ("floating", "series", "windows")}  # type: dict[str, list[datetime]]
    for _, when, s in _meetings(engine):
        at[s].append(when)
    assert at["floating"] == [datetime(2026, 3, 10, 9, 0, tzinfo=UTC)]  # 10:00 CET
    assert at["windows"] == [datetime(2026, 3, 11, 1, 0, tzinfo=UTC)]  # 10:00 JST
    # 10:00 Berlin every week: 09:00 UTC until DST starts on 29 March, then 08:00 UTC.
    assert [w.hour for w in at["series"]] == [9, 9, 9, 9, 8, 8]
    assert not _quarantine(engine)


def test_windows_tzids_are_mapped_and_unknown_ones_quarantined(
    engine: Engine, tmp_path: Path
) -> None:
    events = {
        "tokyo": "Tokyo Standard Time",
        "berlin": "W. Europe Standard Time",
        "seattle": "Pacific Standard Time",
        "atlantis": "Nowhere/Atlantis",
    }
    body = [
        f"BEGIN:VEVENT\nUID:{name}@example.com\nDTSTART;TZID={tzid}:20260310T100000\n"
        f"SUMMARY:{name}\nEND:VEVENT"
        for name, tzid in events.items()
    ]
    _write(tmp_path, "outlook.ics", _cal(*body))
    _sync(engine, tmp_path)
    at = {s: when for _, when, s in _meetings(engine)}
    assert at == {
        "tokyo": datetime(2026, 3, 10, 1, 0, tzinfo=UTC),
        "berlin": datetime(2026, 3, 10, 9, 0, tzinfo=UTC),
        "seattle": datetime(2026, 3, 10, 17, 0, tzinfo=UTC),
    }
    ((sid, reason, path),) = _quarantine(engine)
    assert sid == "atlantis@example.com" and "'Nowhere/Atlantis'" in reason
    assert path and path.endswith("outlook.ics")


def test_unknown_x_wr_timezone_quarantines_only_floating_events(
    engine: Engine, tmp_path: Path
) -> None:
    body = """BEGIN:VEVENT
UID:floating@example.com
DTSTART:20260310T100000
SUMMARY:floating
END:VEVENT
BEGIN:VEVENT
UID:utc@example.com
DTSTART:20260310T100000Z
SUMMARY:utc
END:VEVENT"""
    text = _cal(body).replace("PRODID:-//t//EN", "PRODID:-//t//EN\r\nX-WR-TIMEZONE:Mars/Olympus")
    _write(tmp_path, "odd.ics", text)
    _sync(engine, tmp_path)
    assert [s for *_, s in _meetings(engine)] == ["utc"]
    ((sid, reason, _),) = _quarantine(engine)
    assert sid == "floating@example.com" and "'Mars/Olympus'" in reason


def test_an_empty_rrule_is_one_meeting_with_a_note(engine: Engine, tmp_path: Path) -> None:
    holiday = """BEGIN:VEVENT
UID:holiday@example.com
DTSTART;VALUE=DATE:20260320
RRULE:
SUMMARY:春分の日
END:VEVENT"""
    _write(tmp_path, "holidays.ics", _cal(holiday))
    _sync(engine, tmp_path)
    assert [s for *_, s in _meetings(engine)] == ["春分の日"]
    ((sid, reason, path),) = _quarantine(engine)
    assert sid == "holiday@example.com" and "empty RRULE" in reason
    assert path and path.endswith("holidays.ics")
    _sync(engine, tmp_path)
    assert len(_quarantine(engine)) == 1


def test_the_history_horizon_tells_what_it_cut(engine: Engine, tmp_path: Path) -> None:
    old = """BEGIN:VEVENT
UID:old@example.com
DTSTART:20250106T100000Z
DURATION:PT1H
RRULE:FREQ=WEEKLY;COUNT=60
SUMMARY:old series
END:VEVENT"""
    _write(tmp_path, "old.ics", _cal(old))
    _sync(engine, tmp_path)
    rows = _meetings(engine)
    # 60 Mondays from 2025-01-06: 34 fall before 2025-09-01 (JST), 26 are stored.
    assert len(rows) == 26 and rows[0][1] == datetime(2025, 9, 1, 10, 0, tzinfo=UTC)
    ((sid, reason, path),) = _quarantine(engine)
    assert sid == "old@example.com" and path and path.endswith("old.ics")
    assert "34 older occurrence(s)" in reason and "2025-09-01 (Asia/Tokyo)" in reason
    assert "expand_past_days" in reason
    # Moving the horizon back keeps them all, and the note is closed.
    _sync(engine, tmp_path, expand_past_days=500)
    assert len(_meetings(engine)) == 60
    assert not _quarantine(engine)


def test_a_bare_vevent_file_is_read_as_its_calendar(engine: Engine, tmp_path: Path) -> None:
    bare = "BEGIN:VEVENT\r\nUID:bare@example.com\r\nDTSTART:20260310T010000Z\r\n"
    _write(tmp_path, "bare.ics", bare + "SUMMARY:bare\r\nEND:VEVENT\r\n")
    _write(tmp_path, "todo.ics", "BEGIN:VTODO\r\nUID:t\r\nSUMMARY:todo\r\nEND:VTODO\r\n")
    _sync(engine, tmp_path)
    assert [s for *_, s in _meetings(engine)] == ["bare"]
    ((_, reason, path),) = _quarantine(engine)
    assert "no BEGIN:VCALENDAR" in reason and path and path.endswith("todo.ics")


def test_uid_less_series_under_x_wr_timezone_keeps_its_id(engine: Engine, tmp_path: Path) -> None:
    """The derived id of an event without UID hashes its DTSTART: it must be the same when
    the file's UIDs are listed and when it is split, or an unchanged file would delete it."""
    body = """BEGIN:VEVENT
DTSTART:20260302T090000Z
DURATION:PT1H
RRULE:FREQ=WEEKLY;COUNT=3
SUMMARY:no uid
END:VEVENT"""
    text = _cal(body).replace("PRODID:-//t//EN", "PRODID:-//t//EN\r\nX-WR-TIMEZONE:Europe/Berlin")
    _write(tmp_path, "google.ics", text)
    _write(tmp_path, "other.ics", _cal(GOOD))
    _sync(engine, tmp_path)
    first = _meetings(engine)
    assert sorted(s for *_, s in first) == ["fine", "no uid", "no uid", "no uid"]
    _write(tmp_path, "other.ics", _cal(GOOD.replace("SUMMARY:fine", "SUMMARY:changed")))
    _sync(engine, tmp_path)  # google.ics is unchanged: its ids come from the cursor
    assert sorted(s for *_, s in _meetings(engine)) == ["changed", "no uid", "no uid", "no uid"]
