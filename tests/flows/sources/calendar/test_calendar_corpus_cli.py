"""Every test calendar the icalendar and recurring-ical-events packages ship (read from the
installed packages, not kept here), through ``kizuna sync`` and ``kizuna quarantine --json``:
the streams complete, every file that cannot be used is quarantined with its path and reason,
and representative files land exactly as many meetings as recurring-ical-events' own
expansion gives for the same window (the window the source computes for today)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import warnings
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
import yaml
from typer.testing import CliRunner

from flows.cli.main import app
from flows.sources.ics import Config, window_for

runner = CliRunner()
ICAL_TESTS = Path(icalendar.__file__).parent / "tests"
RIE_TESTS = Path(recurring_ical_events.__file__).parent / "test" / "calendars"
WINDOW = {"expand_past_days": 3650, "expand_future_days": 30, "max_occurrences": 500}

# Representative shapes, each in a source of its own (UIDs repeat across the corpora) →
# meetings stored. Every series here is bounded and lies in 2017-2025, inside the window.
REPRESENTATIVE: dict[str, tuple[Path, int]] = {
    "range-thisandfuture": (RIE_TESTS / "issue_75_range_parameter.ics", 193),
    "x-wr-timezone": (RIE_TESTS / "x_wr_timezone_simple_events_issue_59.ics", 2),
    "x-wr-floating": (RIE_TESTS / "issue_86_x_wr_timezone_without_time_zone_in_dt.ics", 1),
    "exdate": (RIE_TESTS / "each_week_but_two_deleted.ics", 6),
    "empty-rrule": (RIE_TESTS / "Germany_Holidays.ics", 34),
    "two-rrules": (RIE_TESTS / "multiple_rrule.ics", 22),
    "duplicated-rrule": (RIE_TESTS / "duplicated_rrule.ics", 20),
    "moved": (RIE_TESTS / "recurring_events_moved.ics", 7),
    "rdate-exdate": (RIE_TESTS / "issue_148_exdate_and_rdate_updated.ics", 3),
    "rdate-on-until": (RIE_TESTS / "rdate_falls_on_rrule_until.ics", 8),
    "until-utc": (RIE_TESTS / "issue_28_rrule_with_UTC_endinginZ.ics", 24),
    "rdate-period-tz": (ICAL_TESTS / "calendars" / "period_with_timezone.ics", 9),
    "windows-tzid": (ICAL_TESTS / "calendars" / "timezone_same_start_and_offset.ics", 1),
}

# icalendar's calendars that cannot be used (date-independent reasons), by words in the reason.
ICAL_BAD = {
    "calendars/big_bad_calendar.ics": "no VCALENDAR",
    "calendars/issue_104_broken_calendar.ics": "not valid iCalendar",
    "calendars/broken_dtstart.ics": "DTSTART",
    "calendars/invalid_duration.ics": "DURATION",
    "calendars/rfc_7529.ics": "cannot expand recurring event",
    "todos/example.ics": "no BEGIN:VCALENDAR",  # a bare VTODO: no event in it
}
RIE_BAD = {
    "issue_132_swapped_start_and_end.ics": "ends before it starts",
    "issue_48_dst.ics": "more than 500 occurrences",
}


def _copy_corpus(dest: Path) -> None:
    for src in sorted(ICAL_TESTS.glob("*/*.ics")):
        target = dest / "ical" / src.parent.name / src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    (dest / "rie").mkdir()
    for src in sorted(RIE_TESTS.glob("*.ics")):
        shutil.copyfile(src, dest / "rie" / src.name)
    for name, (src, _) in REPRESENTATIVE.items():
        (dest / "one" / name).mkdir(parents=True)
        shutil.copyfile(src, dest / "one" / name / src.name)


def _workspace(tmp_path: Path) -> Path:
    _copy_corpus(tmp_path)
    sources: dict[str, Any] = {
        "ical": {"type": "ics", "path": "ical", **WINDOW},
        "rie": {"type": "ics", "path": "rie", **WINDOW},
    }
    for name in REPRESENTATIVE:
        sources[name] = {"type": "ics", "path": f"one/{name}", **WINDOW}
    ws = {
        "company": {"name": "株式会社コーパス", "domains": ["corpus.example"]},
        "warehouse": {"url": "sqlite:///wh.db"},
        "sources": sources,
    }
    p = tmp_path / "kizuna.yaml"
    p.write_text(yaml.safe_dump(ws, allow_unicode=True), encoding="utf-8")
    return p


def _library_count(path: Path) -> int:
    """recurring-ical-events' own expansion of ``path`` for the window the source uses."""
    tz = ZoneInfo("Asia/Tokyo")
    lo, hi = window_for(Config(path="x", **WINDOW), datetime.now(UTC).astimezone(tz).date(), None)
    start = datetime.combine(date.fromisoformat(lo), time(0), tz)
    end = datetime.combine(date.fromisoformat(hi), time(0), tz)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = icalendar.Calendar.from_ical(path.read_bytes())
        return len(recurring_ical_events.of(cal).between(start, end))


@pytest.mark.slow
def test_test_calendars_through_the_cli(prefect_harness: None, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    for _ in range(2):  # the second sync reads nothing new and piles up nothing
        out = runner.invoke(app, ["sync", "-w", str(ws)])
        assert out.exit_code == 0, out.output
        assert "failed" not in out.output
    # The summary names each calendar's window in the company's zone and what it left out.
    said = " ".join(out.output.split())
    assert "rie/events: recurring meetings expanded from" in said and "(Asia/Tokyo)" in said
    assert "raise sources.rie.expand_past_days" in said

    with sqlite3.connect(tmp_path / "wh.db") as db:
        runs = db.execute("select connector, status from sync_run").fetchall()
        assert runs and {s for _, s in runs} == {"completed"}
        stored = dict(
            db.execute(
                "select connector, count(distinct entity_id) from source_record "
                "where entity = 'activity' and deleted_at is null group by connector"
            ).fetchall()
        )
        keys = dict(
            db.execute(
                "select a.key, a.occurred_at from activity a join source_record s "
                "on s.entity = 'activity' and s.entity_id = a.id where s.connector = ?",
                ("windows-tzid",),
            ).fetchall()
        )
    for name, (src, count) in REPRESENTATIVE.items():
        assert stored.get(name, 0) == count, name
        assert count == _library_count(src), name
    # Outlook's "Tokyo Standard Time" (no VTIMEZONE needed): 12:00 JST.
    assert [str(v)[:19] for v in keys.values()] == ["2017-02-24 03:00:00"]
    assert stored["ical"] > 100 and stored["rie"] > 1000

    listed = runner.invoke(app, ["quarantine", "--json", "-w", str(ws)])
    assert listed.exit_code == 0, listed.output
    entries = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    for e in entries:  # every entry names the file to fix and why
        assert e["path"] and e["reason"], e
        assert (tmp_path / e["path"]).is_file(), e["path"]
    bad: dict[str, list[str]] = {}
    for e in entries:
        bad.setdefault(e["path"], []).append(e["reason"])
    for rel, words in ICAL_BAD.items():
        assert any(words in r for r in bad[f"ical/{rel}"]), (rel, bad[f"ical/{rel}"])
    for rel, words in RIE_BAD.items():
        assert any(words in r for r in bad[f"rie/{rel}"]), (rel, bad[f"rie/{rel}"])
    holidays = bad["one/empty-rrule/Germany_Holidays.ics"]
    assert len(holidays) == 34 and all("empty RRULE" in r for r in holidays)
    assert len(entries) == len({(e["source"], e["source_id"], e["reason"]) for e in entries})
