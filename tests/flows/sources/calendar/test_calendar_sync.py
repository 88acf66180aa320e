"""Calendar files through the real engine (SQLite and PostgreSQL): updates by SEQUENCE,
cancellations, deletions, a moving expansion window, bad files, and re-runs that write
nothing."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from connectors.files.icsfiles import IcsCursor, events
from flows.engine import StreamResult, run_stream
from flows.sources.ics import Config, streams, window_for
from flows.workspace import Company, Workspace
from kizuna.errors import ConfigError
from warehouse import schema as t

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # a Wednesday


def _cal(*events: str, extra: str = "") -> str:
    body = "\n".join(e.strip() for e in events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{extra}\n{body}\nEND:VCALENDAR\n"
    return text.replace("\n\n", "\n").replace("\n", "\r\n")


def _event(uid: str, start: str, *, seq: int = 0, summary: str = "打合せ", more: str = "") -> str:
    return f"""
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20260101T000000Z
DTSTART;TZID=Asia/Tokyo:{start}
DURATION:PT1H
SEQUENCE:{seq}
SUMMARY:{summary}
ORGANIZER;CN=営業 太郎:mailto:taro@kizuna-demo.co.jp
ATTENDEE;CN=山田 花子;PARTSTAT=ACCEPTED:mailto:hanako@acme.co.jp
{more}
END:VEVENT
"""


WEEKLY = _event(
    "weekly@kizuna-demo.co.jp",
    "20260216T100000",
    summary="週次定例",
    more="RRULE:FREQ=WEEKLY;BYDAY=MO",
)


def _ws(tmp_path: Path) -> Workspace:
    return Workspace(
        company=Company(name="株式会社キズナデモ", domains=["kizuna-demo.co.jp"]),
        path=tmp_path / "kizuna.yaml",
    )


def _sync(engine: Engine, tmp_path: Path, now: datetime = NOW, **cfg: Any) -> StreamResult:
    config = Config(type="ics", path="calendars", **cfg)
    (spec,) = streams("calendar", config, _ws(tmp_path), now=now)
    return run_stream(engine, spec, f"run-{now.isoformat()}")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "calendars"
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8", newline="")
    return p


def _acts(engine: Engine) -> dict[str, Any]:
    a = t.Activity
    with engine.connect() as conn:
        rows = conn.execute(
            select(a.key, a.subject, a.status, a.revision, a.deleted_at, a.occurred_at)
        ).all()
    return {row.key: row for row in rows}


def _live(engine: Engine) -> set[str]:
    return {k for k, row in _acts(engine).items() if row.deleted_at is None}


def _nothing_written(res: StreamResult) -> bool:
    s = res.stats
    return (s.inserted, s.updated, s.deleted, s.quarantined) == (0, 0, 0, 0)


def test_sync_end_to_end_then_rerun_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    _write(tmp_path, "team.ics", _cal(WEEKLY, _event("single-1", "20260305T140000")))
    _write(tmp_path, "sub/other.ics", _cal(_event("single-2", "20250101T090000")))
    first = _sync(engine, tmp_path)
    live = _live(engine)
    # Window: 180 days back from 2026-03-04 (to a Monday) .. 90 days ahead (to the next Monday).
    assert window_for(Config(type="ics", path="x"), NOW.date(), None) == [
        "2025-09-01",
        "2026-06-08",
    ]
    weekly = sorted(k for k in live if k.startswith("meeting:weekly@"))
    assert weekly[0] == "meeting:weekly@kizuna-demo.co.jp/2026-02-16T01:00:00Z"
    assert weekly[-1] == "meeting:weekly@kizuna-demo.co.jp/2026-06-01T01:00:00Z"
    assert len(weekly) == 16
    assert {"meeting:single-1", "meeting:single-2"} <= live  # single events kept whatever date
    assert first.stats.by_entity["activity"] == 18
    assert first.stats.quarantined == 0

    with engine.connect() as conn:
        parts = conn.execute(
            select(t.ActivityParticipant.email, t.ActivityParticipant.staff_user_id)
        ).all()
        people = conn.execute(select(t.PersonEmail.email)).scalars().all()
    assert {e for e, staff in parts if staff is not None} == {"taro@kizuna-demo.co.jp"}
    assert people == ["hanako@acme.co.jp"]

    again = _sync(engine, tmp_path)
    assert _nothing_written(again) and again.read == 0
    # Touching a file (new mtime, same bytes) is still "unchanged".
    p = tmp_path / "calendars" / "team.ics"
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    touched = _sync(engine, tmp_path)
    assert _nothing_written(touched) and touched.read == 0


def test_sequence_update_applied_and_lower_sequence_ignored(engine: Engine, tmp_path: Path) -> None:
    _write(tmp_path, "a.ics", _cal(_event("m1", "20260310T100000", summary="初回打合せ")))
    _sync(engine, tmp_path)
    _write(tmp_path, "a.ics", _cal(_event("m1", "20260310T110000", seq=1, summary="日時変更")))
    res = _sync(engine, tmp_path)
    assert res.stats.updated == 1
    row = _acts(engine)["meeting:m1"]
    assert (row.subject, row.revision) == ("日時変更", 1_000_000)
    assert row.occurred_at.astimezone(UTC) == datetime(2026, 3, 10, 2, tzinfo=UTC)

    # An older copy of the invitation (SEQUENCE 0) does not undo the update.
    _write(tmp_path, "a.ics", _cal(_event("m1", "20260310T100000", seq=0, summary="古い版")))
    res = _sync(engine, tmp_path)
    assert res.stats.updated == 0
    assert _acts(engine)["meeting:m1"].subject == "日時変更"

    # An update arriving as its own file is merged with the original by UID.
    _write(tmp_path, "b-update.ics", _cal(_event("m1", "20260310T120000", seq=2, summary="再変更")))
    _sync(engine, tmp_path)
    assert _acts(engine)["meeting:m1"].subject == "再変更"


def test_cancellation_is_applied(engine: Engine, tmp_path: Path) -> None:
    _write(tmp_path, "a.ics", _cal(_event("m2", "20260312T100000"), WEEKLY))
    _sync(engine, tmp_path)
    cancelled_instance = """
BEGIN:VEVENT
UID:weekly@kizuna-demo.co.jp
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Asia/Tokyo:20260323T100000
DTSTART;TZID=Asia/Tokyo:20260323T100000
DURATION:PT1H
SEQUENCE:1
STATUS:CANCELLED
SUMMARY:週次定例
END:VEVENT
"""
    _write(
        tmp_path,
        "a.ics",
        _cal(_event("m2", "20260312T100000", seq=1, more="STATUS:CANCELLED"), WEEKLY),
    )
    _write(tmp_path, "cancel.ics", _cal(cancelled_instance, extra="METHOD:CANCEL"))
    _sync(engine, tmp_path)
    acts = _acts(engine)
    assert acts["meeting:m2"].status == "cancelled"
    assert acts["meeting:m2"].deleted_at is None
    key = "meeting:weekly@kizuna-demo.co.jp/2026-03-23T01:00:00Z"
    assert acts[key].status == "cancelled"
    assert acts["meeting:weekly@kizuna-demo.co.jp/2026-03-16T01:00:00Z"].status == "confirmed"


def test_event_removed_from_file_or_excluded_is_marked_deleted(
    engine: Engine, tmp_path: Path
) -> None:
    _write(
        tmp_path,
        "a.ics",
        _cal(_event("keep", "20260310T100000"), _event("gone", "20260311T100000")),
    )
    _write(tmp_path, "b.ics", _cal(WEEKLY))
    _sync(engine, tmp_path)
    assert {"meeting:keep", "meeting:gone"} <= _live(engine)

    _write(tmp_path, "a.ics", _cal(_event("keep", "20260310T100000")))
    res = _sync(engine, tmp_path)
    assert res.stats.deleted == 1
    acts = _acts(engine)
    assert acts["meeting:gone"].deleted_at is not None
    assert acts["meeting:keep"].deleted_at is None

    # EXDATE one occurrence: only that occurrence goes.
    exdate = WEEKLY.replace("END:VEVENT", "EXDATE;TZID=Asia/Tokyo:20260302T100000\nEND:VEVENT")
    _write(tmp_path, "b.ics", _cal(exdate))
    _sync(engine, tmp_path)
    live = _live(engine)
    assert "meeting:weekly@kizuna-demo.co.jp/2026-03-02T01:00:00Z" not in live
    assert "meeting:weekly@kizuna-demo.co.jp/2026-03-09T01:00:00Z" in live

    # The whole file goes: every occurrence is deleted.
    (tmp_path / "calendars" / "b.ics").unlink()
    _sync(engine, tmp_path)
    assert not any(k.startswith("meeting:weekly@") for k in _live(engine))
    assert _live(engine) == {"meeting:keep"}


def test_moving_window_adds_future_occurrences_and_keeps_the_past(
    engine: Engine, tmp_path: Path
) -> None:
    _write(tmp_path, "a.ics", _cal(WEEKLY, _event("single", "20260310T100000")))
    _sync(engine, tmp_path, expand_past_days=7, expand_future_days=14)
    before = {k for k in _live(engine) if k.startswith("meeting:weekly@")}
    # 2026-02-23 (Monday a week back) .. 2026-03-23: 02-23, 03-02, 03-09, 03-16.
    assert len(before) == 4

    # Six days later: same week's end → nothing to do.
    same = _sync(
        engine, tmp_path, now=NOW + timedelta(days=4), expand_past_days=7, expand_future_days=14
    )
    assert _nothing_written(same)

    # Five weeks later the end has moved: new occurrences appear, none of the old are retired,
    # and the single meeting is skipped as unchanged (its record does not carry the window).
    later = _sync(
        engine, tmp_path, now=NOW + timedelta(days=35), expand_past_days=7, expand_future_days=14
    )
    after = {k for k in _live(engine) if k.startswith("meeting:weekly@")}
    assert before < after
    assert later.stats.deleted == 0
    assert later.unchanged == 1  # the single event
    assert max(after) == "meeting:weekly@kizuna-demo.co.jp/2026-04-20T01:00:00Z"


def test_unreadable_file_is_quarantined_and_deletes_nothing(engine: Engine, tmp_path: Path) -> None:
    _write(tmp_path, "a.ics", _cal(_event("ok", "20260310T100000")))
    _write(tmp_path, "b.ics", _cal(_event("b1", "20260311T100000")))
    _sync(engine, tmp_path)
    (tmp_path / "calendars" / "b.ics").write_bytes(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nX\r\n")
    _write(
        tmp_path,
        "c.ics",
        _cal(
            _event("no-start", "20260311T100000").replace(
                "DTSTART;TZID=Asia/Tokyo:20260311T100000\n", ""
            )
        ),
    )
    res = _sync(engine, tmp_path)
    assert res.stats.quarantined == 2  # the broken file and the event without DTSTART
    assert res.stats.deleted == 0
    assert {"meeting:ok", "meeting:b1"} <= _live(engine)
    with engine.connect() as conn:
        reasons = conn.execute(select(t.Quarantine.source_id, t.Quarantine.reason)).all()
    assert {sid for sid, _ in reasons} == {"file:b.ics", "no-start"}
    assert any("DTSTART" in reason for _, reason in reasons)
    # Nothing changed since: nothing is quarantined again.
    assert _nothing_written(_sync(engine, tmp_path))


def test_connector_pages_and_resumable_cursor(tmp_path: Path) -> None:
    for i in range(5):
        _write(
            tmp_path, f"f{i}.ics", _cal(*(_event(f"e{i}-{j}", "20260310T100000") for j in range(3)))
        )
    root = tmp_path / "calendars"
    pages = list(events(root, None, window=["2026-01-05", "2026-06-01"], page_size=4))
    assert [len(p.records) for p in pages] == [6, 6, 3]
    assert [p.snapshot_end for p in pages] == [False, False, True]
    # The cursor after a page covers exactly the files whose events were all emitted.
    assert sorted(pages[0].cursor.files) == ["f0.ics", "f1.ics"]
    assert pages[0].records[0]["file"] == "f0.ics" and "window" not in pages[0].records[0]
    # Resuming from a mid-pass cursor re-reads only the rest and reports the rest as seen.
    rest = list(events(root, pages[0].cursor, window=["2026-01-05", "2026-06-01"]))
    assert sum(len(p.records) for p in rest) == 9
    assert sorted(rest[0].seen) == [f"e{i}-{j}" for i in range(2) for j in range(3)]
    # A different window re-reads everything.
    final = pages[-1].cursor
    assert isinstance(final, IcsCursor)
    moved = list(events(root, final, window=["2026-01-05", "2026-06-08"]))
    assert sum(len(p.records) for p in moved) == 15
    same = list(events(root, final, window=["2026-01-05", "2026-06-01"]))
    assert sum(len(p.records) for p in same) == 0 and len(same[0].seen) == 15


def test_missing_path_names_the_field(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _sync(engine, tmp_path)
    assert info.value.field == "sources.calendar.path"
    assert "calendar path not found" in str(info.value)
