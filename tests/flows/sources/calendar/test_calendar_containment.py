"""Calendar files that used to stop the whole stream (issue 16), each through the real engine:
the stream completes, the good event lands, the bad one is quarantined with its file and reason.
Also the work limits: sub-daily rules and series with too many occurrences."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from flows.engine import StreamResult, run_stream
from flows.sources.ics import Config, streams
from flows.workspace import Company, Workspace
from warehouse import schema as t

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)

GOOD = """BEGIN:VEVENT
UID:good@example.com
DTSTAMP:20260101T000000Z
DTSTART:20260305T010000Z
DURATION:PT1H
SUMMARY:fine
END:VEVENT"""


def _cal(*events: str) -> str:
    body = "\n".join(e.strip() for e in events)
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\n{body}\nEND:VCALENDAR\n".replace(
        "\n", "\r\n"
    )


def _sync(engine: Engine, tmp_path: Path, **cfg: object) -> StreamResult:
    ws = Workspace(
        company=Company(name="株式会社テスト", domains=["example.co.jp"]),
        path=tmp_path / "kizuna.yaml",
    )
    (spec,) = streams("cal", Config(type="ics", path="cals", **cfg), ws, now=NOW)  # type: ignore[arg-type]
    return run_stream(engine, spec, "run-1")


def _write(tmp_path: Path, name: str, text: str) -> None:
    p = tmp_path / "cals" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8", newline="")


def _subjects(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(s or "" for (s,) in conn.execute(select(t.Activity.subject)).all())


def _quarantine(engine: Engine) -> list[tuple[str | None, str, str | None]]:
    q = t.Quarantine
    with engine.connect() as conn:
        return [
            (sid, reason, path)
            for sid, reason, path in conn.execute(
                select(q.source_id, q.reason, q.path).where(q.resolved_at.is_(None))
            )
        ]


BROKEN = {
    "garbage_dtstamp": """BEGIN:VEVENT
UID:bad@example.com
DTSTAMP:not-a-date
LAST-MODIFIED:garbage
DTSTART:20260305T010000Z
SUMMARY:bad
END:VEVENT""",
    "two_recurrence_ids": """BEGIN:VEVENT
UID:bad@example.com
DTSTART:20260305T010000Z
RRULE:FREQ=DAILY;COUNT=3
SUMMARY:bad
END:VEVENT
BEGIN:VEVENT
UID:bad@example.com
RECURRENCE-ID:20260306T010000Z
RECURRENCE-ID:20260307T010000Z
DTSTART:20260306T020000Z
SUMMARY:bad
END:VEVENT""",
    "no_uid_doubled_dtstart": """BEGIN:VEVENT
DTSTART:20260305T010000Z
DTSTART:20260306T010000Z
RRULE:FREQ=DAILY;COUNT=2
RRULE:FREQ=WEEKLY;COUNT=2
SUMMARY:bad
END:VEVENT""",
    "unknown_tzid": """BEGIN:VEVENT
UID:bad@example.com
DTSTART;TZID=Nowhere/Atlantis:20260305T100000
SUMMARY:bad
END:VEVENT""",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_event_is_quarantined_and_the_rest_lands(
    engine: Engine, tmp_path: Path, case: str
) -> None:
    _write(tmp_path, "a_good.ics", _cal(GOOD))
    _write(tmp_path, "b_bad.ics", _cal(BROKEN[case]))
    _sync(engine, tmp_path)
    assert _subjects(engine) == ["fine"]
    (entry,) = _quarantine(engine)
    assert entry[2] is not None and entry[2].endswith("b_bad.ics")
    assert entry[1]
    # Synced again: still one open entry, not two.
    _sync(engine, tmp_path)
    assert len(_quarantine(engine)) == 1


@pytest.mark.parametrize("freq", ["SECONDLY", "MINUTELY"])
def test_sub_daily_rules_are_refused_quickly(engine: Engine, tmp_path: Path, freq: str) -> None:
    flood = f"""BEGIN:VEVENT
UID:flood@example.com
DTSTART:20250101T000000Z
RRULE:FREQ={freq}
SUMMARY:flood
END:VEVENT"""
    _write(tmp_path, "a_good.ics", _cal(GOOD))
    _write(tmp_path, "flood.ics", _cal(flood))
    started = time.monotonic()
    _sync(engine, tmp_path)
    assert time.monotonic() - started < 10
    assert _subjects(engine) == ["fine"]
    ((sid, reason, path),) = _quarantine(engine)
    assert sid == "flood@example.com" and freq in reason and path and path.endswith("flood.ics")


def test_a_series_over_the_occurrence_cap_is_quarantined(engine: Engine, tmp_path: Path) -> None:
    hourly = """BEGIN:VEVENT
UID:hourly@example.com
DTSTART:20260101T000000Z
RRULE:FREQ=HOURLY
SUMMARY:hourly
END:VEVENT"""
    _write(tmp_path, "a_good.ics", _cal(GOOD))
    _write(tmp_path, "hourly.ics", _cal(hourly))
    started = time.monotonic()
    _sync(engine, tmp_path, max_occurrences=500)
    assert time.monotonic() - started < 10
    assert _subjects(engine) == ["fine"]
    ((sid, reason, _),) = _quarantine(engine)
    assert sid == "hourly@example.com" and "500" in reason


def test_recurring_events_without_uid_keep_every_occurrence(engine: Engine, tmp_path: Path) -> None:
    nouid = """BEGIN:VEVENT
DTSTART:20260302T010000Z
DURATION:PT1H
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:no uid
END:VEVENT"""
    _write(tmp_path, "nouid.ics", _cal(nouid))
    _sync(engine, tmp_path)
    assert _subjects(engine) == ["no uid"] * 4
    with engine.connect() as conn:
        keys = sorted(k for (k,) in conn.execute(select(t.Activity.key)))
    _sync(engine, tmp_path)
    with engine.connect() as conn:
        assert sorted(k for (k,) in conn.execute(select(t.Activity.key))) == keys


@pytest.mark.parametrize(
    ("start", "rule"),
    [
        ("00010101T000000Z", "FREQ=HOURLY"),  # 17 million hours before the window
        ("19000101T000000Z", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"),  # never matches
    ],
)
def test_a_rule_stepping_too_far_to_the_window_is_refused_quickly(
    engine: Engine, tmp_path: Path, start: str, rule: str
) -> None:
    far = f"""BEGIN:VEVENT
UID:far@example.com
DTSTART:{start}
RRULE:{rule}
SUMMARY:far
END:VEVENT"""
    _write(tmp_path, "a_good.ics", _cal(GOOD))
    _write(tmp_path, "far.ics", _cal(far))
    started = time.monotonic()
    _sync(engine, tmp_path)
    assert time.monotonic() - started < 10
    assert _subjects(engine) == ["fine"]
    ((sid, reason, _),) = _quarantine(engine)
    assert sid == "far@example.com" and "steps, more than 20,000" in reason
