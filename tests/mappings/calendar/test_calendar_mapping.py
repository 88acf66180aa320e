"""iCalendar → meeting activities: the icalendar package's own test calendars, time zones
across DST, recurrence exceptions, revisions, cancellations and participants."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import icalendar
import pytest

from connectors.files.ical_split import split_by_uid
from kizuna.errors import BadRecord
from mappings.calendar.events import events_to_activities, revision_of

CORPUS = Path(icalendar.__file__).parent / "tests" / "calendars"
WIDE = {
    "window_start": datetime(2000, 1, 1, tzinfo=UTC),
    "window_end": datetime(2030, 1, 1, tzinfo=UTC),
}


def _map(text: str | bytes, **kw: object) -> list:  # type: ignore[type-arg]
    args: dict[str, object] = {"own_domains": ["kizuna-demo.co.jp"], **WIDE, **kw}
    return events_to_activities(text, **args)  # type: ignore[arg-type]


def _cal(*events: str, extra: str = "") -> str:
    body = "\n".join(e.strip() for e in events)
    return (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n"
        f"{extra.strip()}\n{body}\nEND:VCALENDAR\n".replace("\n\n", "\n")
    ).replace("\n", "\r\n")


# -- the icalendar package's own test calendars (many from real bug reports) ----------------

# file → (number of activities, first occurred_at in UTC or None, tzid or None)
GOOD = {
    "example.ics": (3, "2021-12-31T15:00:00+00:00", None),  # all-day, read in Asia/Tokyo
    "property_params.ics": (1, "2012-08-13T15:00:00+00:00", None),
    "issue_1081_tzid_param.ics": (1, "2025-01-01T15:00:00+00:00", "America/New_York"),
    "issue_1081_event_with_rrule.ics": (10, "2025-01-01T10:00:00+00:00", "UTC"),
    "timezone_same_start_and_offset.ics": (1, "2017-02-24T03:00:00+00:00", "Tokyo Standard Time"),
    "issue_313_globally_unique_tzid.ics": (3, None, None),
    "rfc_7265_appendix_example_2_ical.ics": (6, "2006-01-02T17:00:00+00:00", "US/Eastern"),
    "period_with_timezone.ics": (9, None, "America/Vancouver"),
    # a Google export: UTC times in the calendar's X-WR-TIMEZONE, same instant
    "alarm_google_acknowledged.ics": (1, "2024-10-04T18:15:00+00:00", "Europe/London"),
    "issue_1050_calendar_with_events_and_todos.ics": (2, None, "America/New_York"),
    "calendar_with_unicode.ics": (0, None, None),
}

# file → words the quarantine reason must contain
BAD = {
    "broken_dtstart.ics": "DTSTART",
    "issue_104_broken_calendar.ics": "not valid iCalendar",
    "pacific_fiji.ics": "2 DTSTART lines",
    "issue_1081_invalid_rrule_freq.ics": "unreadable RRULE",
    "parsing_error_in_UTC_offset.ics": "Offset",
    "big_bad_calendar.ics": "no VCALENDAR",
    "issue_1081_invalid_start_and_end.ics": "DTSTART",
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_corpus_calendar_maps(name: str) -> None:
    count, first, tzid = GOOD[name]
    acts = _map((CORPUS / name).read_bytes())
    assert len(acts) == count
    for a in acts:
        assert a.kind == "meeting"
        assert a.occurred_at.utcoffset() is not None
        assert a.thread_key and a.key.startswith(f"meeting:{a.thread_key}")
        assert a.source_id == a.attributes["uid"]
    if first is not None:
        assert min(a.occurred_at for a in acts).isoformat() == first
    if tzid is not None:
        assert acts[0].attributes["tzid"] == tzid
    assert len({a.key for a in acts}) == len(acts)


@pytest.mark.parametrize("name", sorted(BAD))
def test_corpus_calendar_is_quarantined_with_a_reason(name: str) -> None:
    with pytest.raises(BadRecord) as info:
        _map((CORPUS / name).read_bytes())
    assert BAD[name] in info.value.reason


def test_corpus_participants_and_revision() -> None:
    (a,) = _map((CORPUS / "property_params.ics").read_bytes(), own_domains=["daxlab.com"])
    assert a.subject == "Test meeting from BB"
    assert a.attributes["all_day"] is True
    assert a.revision == revision_of(2, None) == 2_000_000
    org = [p for p in a.participants if p.role == "organizer"]
    att = [p for p in a.participants if p.role == "attendee"]
    assert [(p.email, p.internal) for p in org] == [("rembrand@daxlab.com", True)]
    assert {(p.email, p.name, p.response, p.internal) for p in att} == {
        ("rembrand@xs4all.nl", "RembrandXS", "needs-action", False),
        ("rembrand@daxlab.com", "RembrandDX", "needs-action", True),
        ("rembspam@xs4all.nl", "RembrandSB", "needs-action", False),
    }
    assert a.direction == "outbound"


def test_corpus_moved_instance_keeps_its_recurrence_key() -> None:
    acts = _map((CORPUS / "rfc_7265_appendix_example_2_ical.ics").read_bytes())
    uid = "00959BC664CA650E933C892C@example.com"
    by_key = {a.key: a for a in acts}
    # RECURRENCE-ID 2006-01-04 12:00 US/Eastern, moved to 14:00.
    moved = by_key[f"meeting:{uid}/2006-01-04T17:00:00Z"]
    assert moved.occurred_at == datetime(2006, 1, 4, 19, tzinfo=UTC)
    assert moved.ends_at == datetime(2006, 1, 4, 20, tzinfo=UTC)
    # The RDATE period adds a 15:00 occurrence lasting two hours.
    rdate = by_key[f"meeting:{uid}/2006-01-02T20:00:00Z"]
    assert rdate.ends_at == datetime(2006, 1, 2, 22, tzinfo=UTC)


# -- time zones across DST ----------------------------------------------------------------

NY_TZ = """
BEGIN:VTIMEZONE
TZID:America/New_York
BEGIN:STANDARD
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
END:VTIMEZONE
"""

WEEKLY_NY = """
BEGIN:VEVENT
UID:weekly-ny@kizuna-demo.co.jp
DTSTAMP:20260101T000000Z
DTSTART;TZID=America/New_York:20260302T090000
DTEND;TZID=America/New_York:20260302T093000
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:Weekly sync (NY)
ORGANIZER;CN=佐藤 健:mailto:sato@kizuna-demo.co.jp
ATTENDEE;CN=Jane Doe;PARTSTAT=ACCEPTED:mailto:Jane.Doe@Example.com
ATTENDEE;CN=会議室A;CUTYPE=ROOM:mailto:room-a@kizuna-demo.co.jp
END:VEVENT
"""

WEEKLY_TOKYO = """
BEGIN:VEVENT
UID:weekly-tokyo@kizuna-demo.co.jp
DTSTAMP:20260101T000000Z
DTSTART;TZID=Asia/Tokyo:20260302T100000
DURATION:PT1H
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:定例会議
END:VEVENT
"""


def test_weekly_meetings_across_dst_land_on_the_right_utc_instants() -> None:
    acts = _map(_cal(WEEKLY_NY, WEEKLY_TOKYO, extra=NY_TZ))
    ny = sorted(a.occurred_at for a in acts if a.thread_key == "weekly-ny@kizuna-demo.co.jp")
    tokyo = sorted(a.occurred_at for a in acts if a.thread_key == "weekly-tokyo@kizuna-demo.co.jp")
    # New York switches to EDT on 2026-03-08: 09:00 local is 14:00Z, then 13:00Z.
    assert ny == [
        datetime(2026, 3, 2, 14, tzinfo=UTC),
        datetime(2026, 3, 9, 13, tzinfo=UTC),
        datetime(2026, 3, 16, 13, tzinfo=UTC),
        datetime(2026, 3, 23, 13, tzinfo=UTC),
    ]
    # Tokyo has no DST: always 01:00Z.
    assert tokyo == [datetime(2026, 3, d, 1, tzinfo=UTC) for d in (2, 9, 16, 23)]
    first = next(
        a for a in acts if a.key == "meeting:weekly-ny@kizuna-demo.co.jp/2026-03-02T14:00:00Z"
    )
    assert first.attributes["tzid"] == "America/New_York"
    assert first.ends_at == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    assert first.attributes["rooms"] == ["会議室A"]
    assert [(p.email, p.role, p.internal) for p in first.participants] == [
        ("sato@kizuna-demo.co.jp", "organizer", True),
        ("jane.doe@example.com", "attendee", False),
    ]
    assert first.participants[1].response == "accepted"
    assert first.direction == "outbound"
    tok = next(a for a in acts if a.thread_key == "weekly-tokyo@kizuna-demo.co.jp")
    assert tok.attributes["tzid"] == "Asia/Tokyo"
    assert tok.ends_at is not None and (tok.ends_at - tok.occurred_at).seconds == 3600


def test_window_bounds_the_expansion() -> None:
    acts = _map(
        _cal(WEEKLY_TOKYO),
        window_start=datetime(2026, 3, 8, tzinfo=UTC),
        window_end=datetime(2026, 3, 17, tzinfo=UTC),
    )
    assert [a.occurred_at.day for a in acts] == [9, 16]


def test_exdate_and_moved_instance() -> None:
    master = """
BEGIN:VEVENT
UID:exdate-move
DTSTAMP:20260101T000000Z
DTSTART;TZID=Asia/Tokyo:20260105T150000
DTEND;TZID=Asia/Tokyo:20260105T160000
RRULE:FREQ=WEEKLY;COUNT=4
EXDATE;TZID=Asia/Tokyo:20260112T150000
SUMMARY:週次レビュー
END:VEVENT
"""
    moved = """
BEGIN:VEVENT
UID:exdate-move
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Asia/Tokyo:20260119T150000
DTSTART;TZID=Asia/Tokyo:20260120T110000
DTEND;TZID=Asia/Tokyo:20260120T120000
SEQUENCE:1
SUMMARY:週次レビュー（振替）
END:VEVENT
"""
    acts = {a.key: a for a in _map(_cal(master, moved))}
    assert sorted(acts) == [
        "meeting:exdate-move/2026-01-05T06:00:00Z",
        "meeting:exdate-move/2026-01-19T06:00:00Z",
        "meeting:exdate-move/2026-01-26T06:00:00Z",
    ]
    m = acts["meeting:exdate-move/2026-01-19T06:00:00Z"]
    assert m.occurred_at == datetime(2026, 1, 20, 2, tzinfo=UTC)
    assert m.subject == "週次レビュー（振替）"
    assert m.revision == 1_000_000
    # recurring_ical_events gives every occurrence the series' highest SEQUENCE.
    assert acts["meeting:exdate-move/2026-01-05T06:00:00Z"].revision == 1_000_000


def test_status_cancelled_and_method_cancel() -> None:
    ev = """
BEGIN:VEVENT
UID:c1
DTSTAMP:20260101T000000Z
DTSTART:20260210T010000Z
DTEND:20260210T020000Z
SEQUENCE:3
STATUS:CANCELLED
SUMMARY:中止
END:VEVENT
"""
    (a,) = _map(_cal(ev))
    assert a.status == "cancelled" and a.key == "meeting:c1"
    plain = ev.replace("STATUS:CANCELLED\n", "")
    (b,) = _map(_cal(plain, extra="METHOD:CANCEL"))
    assert b.status == "cancelled"
    (c,) = _map(_cal(plain.replace("SEQUENCE:3", "STATUS:TENTATIVE")))
    assert c.status == "tentative"


def test_all_day_and_floating_times_use_the_workspace_zone() -> None:
    ev = """
BEGIN:VEVENT
UID:allday
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:20260401
SUMMARY:入社式
END:VEVENT
BEGIN:VEVENT
UID:floating
DTSTAMP:20260101T000000Z
DTSTART:20260401T090000
DTEND:20260401T100000
SUMMARY:Floating
END:VEVENT
"""
    acts = {a.key: a for a in _map(_cal(ev), default_tz="Asia/Tokyo")}
    allday = acts["meeting:allday"]
    assert allday.occurred_at == datetime(2026, 3, 31, 15, tzinfo=UTC)
    assert allday.ends_at == datetime(2026, 4, 1, 15, tzinfo=UTC)
    assert allday.attributes["all_day"] is True
    assert acts["meeting:floating"].occurred_at == datetime(2026, 4, 1, 0, tzinfo=UTC)
    la = {a.key: a for a in _map(_cal(ev), default_tz="America/Los_Angeles")}
    assert la["meeting:allday"].occurred_at == datetime(2026, 4, 1, 7, tzinfo=UTC)


def test_last_modified_breaks_sequence_ties_and_sequence_wins() -> None:
    a = revision_of(1, datetime(2026, 1, 1, tzinfo=UTC))
    b = revision_of(1, datetime(2026, 1, 1, 5, tzinfo=UTC))
    c = revision_of(2, None)
    assert a < b < c < 2**31 - 1
    assert revision_of(10_000, datetime(2200, 1, 1, tzinfo=UTC)) < 2**31 - 1


def test_description_is_trimmed_and_bad_addresses_are_skipped() -> None:
    ev = f"""
BEGIN:VEVENT
UID:snip
DTSTAMP:20260101T000000Z
DTSTART:20260210T010000Z
DESCRIPTION:{"議題 " * 300}
ORGANIZER:urn:uuid:00000000-0000-0000-0000-000000000000
ATTENDEE;CN=Ok:mailto:ok@example.co.jp
END:VEVENT
"""
    (a,) = _map(_cal(ev))
    assert a.snippet is not None and len(a.snippet) == 500 and a.snippet.endswith("…")
    assert [p.email for p in a.participants] == ["ok@example.co.jp"]
    assert a.direction is None


def test_not_icalendar_is_a_bad_record() -> None:
    with pytest.raises(BadRecord):
        _map(b"\x82\xa0\x82\xa2 not a calendar")
    with pytest.raises(BadRecord):
        _map("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:2026X\r\n")


def test_split_by_uid_gives_one_calendar_per_event_with_its_timezone() -> None:
    parts = split_by_uid(_cal(WEEKLY_NY, WEEKLY_TOKYO, extra=NY_TZ))
    assert list(parts) == ["weekly-ny@kizuna-demo.co.jp", "weekly-tokyo@kizuna-demo.co.jp"]
    assert "TZID:America/New_York" in parts["weekly-ny@kizuna-demo.co.jp"]
    assert "BEGIN:VTIMEZONE" not in parts["weekly-tokyo@kizuna-demo.co.jp"]
    # Each part maps on its own to the same activities as the whole.
    whole = {a.key for a in _map(_cal(WEEKLY_NY, WEEKLY_TOKYO, extra=NY_TZ))}
    assert {a.key for p in parts.values() for a in _map(p)} == whole
    # Deterministic: equal input, equal text (its hash is the "unchanged" test).
    assert split_by_uid(_cal(WEEKLY_NY, extra=NY_TZ)) == split_by_uid(_cal(WEEKLY_NY, extra=NY_TZ))


def test_split_merges_files_and_keeps_the_higher_sequence() -> None:
    v0 = """
BEGIN:VEVENT
UID:upd
DTSTAMP:20260101T000000Z
DTSTART:20260210T010000Z
SEQUENCE:0
SUMMARY:old
END:VEVENT
"""
    v1 = v0.replace("SEQUENCE:0", "SEQUENCE:1").replace("SUMMARY:old", "SUMMARY:new")
    for order in ((v0, v1), (v1, v0)):
        merged = split_by_uid(_cal(order[0]), _cal(order[1]))
        (a,) = _map(merged["upd"])
        assert a.subject == "new"
    cancel = split_by_uid(
        _cal(v0), _cal(v1.replace("SEQUENCE:1", "SEQUENCE:2"), extra="METHOD:CANCEL")
    )
    (c,) = _map(cancel["upd"])
    assert c.status == "cancelled" and c.revision == 2_000_000


def test_floating_and_all_day_series_expand_in_the_workspace_zone() -> None:
    evs = """
BEGIN:VEVENT
UID:f
DTSTART:20260302T090000
DTEND:20260302T100000
RRULE:FREQ=WEEKLY;COUNT=3
END:VEVENT
BEGIN:VEVENT
UID:d
DTSTART;VALUE=DATE:20260302
RRULE:FREQ=WEEKLY;COUNT=3
END:VEVENT
"""
    acts = _map(
        _cal(evs),
        window_start=datetime(2026, 3, 8, tzinfo=UTC),
        window_end=datetime(2026, 4, 1, tzinfo=UTC),
    )
    assert [(a.key, a.occurred_at) for a in acts] == [
        ("meeting:f/2026-03-09T00:00:00Z", datetime(2026, 3, 9, 0, tzinfo=UTC)),
        ("meeting:f/2026-03-16T00:00:00Z", datetime(2026, 3, 16, 0, tzinfo=UTC)),
        ("meeting:d/2026-03-09", datetime(2026, 3, 8, 15, tzinfo=UTC)),
        ("meeting:d/2026-03-16", datetime(2026, 3, 15, 15, tzinfo=UTC)),
    ]


def test_shift_jis_export_from_old_groupware_is_read() -> None:
    text = _cal(
        """
BEGIN:VEVENT
UID:sjis-1
DTSTART;TZID=Asia/Tokyo:20260310T100000
SUMMARY:①定例会議～第2回
LOCATION:本社　会議室
END:VEVENT
"""
    )
    (a,) = _map(text.encode("cp932"))
    assert (a.subject, a.location) == ("①定例会議～第2回", "本社　会議室")
    with pytest.raises(BadRecord):
        _map(b"BEGIN:VCALENDAR\r\n\xff\xfe\xfd\r\nEND:VCALENDAR\r\n")


def test_overlong_uids_keep_occurrences_apart_and_agree_across_sources() -> None:
    """Regression: API keys over the column length kept only the UID's head, so every
    occurrence of such a series collapsed into one activity."""
    from mappings.calendar.events import api_meeting_key, fit_key

    uid = "x" * 600
    a = api_meeting_key(uid, "2026-01-05T00:00:00+00:00")
    b = api_meeting_key(uid, "2026-01-12T00:00:00+00:00")
    assert a != b and len(a) <= 500
    assert a == fit_key(f"meeting:{uid}/2026-01-05T00:00:00+00:00")
