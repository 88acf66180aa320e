"""Google Calendar connector and mapping on Calendar v3's real shapes (offline discovery doc)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from connectors.calendar.gcal import GcalCursor, GcalOptions, events
from connectors.throttle import RetryPolicy, TokenBucket
from flows.engine import run_stream
from flows.sources import gcal as source_gcal
from flows.workspace import Company, Workspace
from kizuna.errors import BadRecord, ResyncRequired
from mappings.calendar.events import events_to_activities
from mappings.calendar.gcal import event_activity
from tests.support.fakes.google_fakes import FULL_SYNC_410, RATE_403, Script, ok, service
from warehouse import schema as t

ACCOUNT = "hanako@ourco.co.jp"
NOW = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
UID = "5r3k9q0mbd1c2e@google.com"


def opts(sleeps: list[float] | None = None) -> GcalOptions:
    sink = sleeps if sleeps is not None else []
    return GcalOptions(
        account=ACCOUNT,
        past_days=30,
        page_size=2,
        policy=RetryPolicy(max_retries=2, sleep=sink.append, rand=lambda: 0.5),
        budget=TokenBucket(100.0, 1000.0, clock=lambda: 0.0, sleep=sink.append),
    )


def meeting(**over: object) -> dict[str, object]:
    ev: dict[str, object] = {
        "kind": "calendar#event",
        "etag": '"3391234567890000"',
        "id": "1a2b3c4d5e6f",
        "status": "confirmed",
        "htmlLink": "https://www.google.com/calendar/event?eid=MWEyYjNj",
        "created": "2026-02-20T02:00:00.000Z",
        "updated": "2026-02-21T03:30:00.000Z",
        "summary": "製品デモ（株式会社カスタマー様）",
        "description": "デモ環境のご案内",
        "location": "本社 3F 会議室A",
        "creator": {"email": ACCOUNT, "self": True},
        "organizer": {"email": ACCOUNT, "self": True},
        "start": {"dateTime": "2026-03-05T14:00:00+09:00", "timeZone": "Asia/Tokyo"},
        "end": {"dateTime": "2026-03-05T15:00:00+09:00", "timeZone": "Asia/Tokyo"},
        "iCalUID": "demo-7781@google.com",
        "sequence": 1,
        "attendees": [
            {"email": ACCOUNT, "organizer": True, "self": True, "responseStatus": "accepted"},
            {
                "email": "taro@customer.co.jp",
                "displayName": "田中 太郎",
                "responseStatus": "needsAction",
            },
            {"email": "jiro@ourco.co.jp", "responseStatus": "tentative"},
            {
                "email": "c_1888abc@resource.calendar.google.com",
                "displayName": "会議室A",
                "resource": True,
                "responseStatus": "accepted",
            },
        ],
        "hangoutLink": "https://meet.google.com/abc-defg-hij",
        "reminders": {"useDefault": True},
        "eventType": "default",
    }
    ev.update(over)
    return ev


def instance(day: str) -> dict[str, object]:
    """An instance of a weekly series as ``singleEvents=True`` returns it."""
    return meeting(
        id=f"7h2k3recur_{day.replace('-', '')}T010000Z",
        iCalUID=UID,
        summary="定例",
        recurringEventId="7h2k3recur",
        originalStartTime={"dateTime": f"{day}T10:00:00+09:00", "timeZone": "Asia/Tokyo"},
        start={"dateTime": f"{day}T10:00:00+09:00", "timeZone": "Asia/Tokyo"},
        end={"dateTime": f"{day}T10:30:00+09:00", "timeZone": "Asia/Tokyo"},
        sequence=0,
    )


def listing(items: list[dict[str, object]], **extra: str) -> dict[str, object]:
    return {
        "kind": "calendar#events",
        "etag": '"p33c"',
        "summary": ACCOUNT,
        "updated": "2026-03-02T00:00:00.000Z",
        "timeZone": "Asia/Tokyo",
        "accessRole": "owner",
        "defaultReminders": [],
        "items": items,
        **extra,
    }


def test_full_sync_in_a_window_then_sync_token_without_time_min() -> None:
    ooo = meeting(id="ooo1", eventType="outOfOffice", summary="休暇")
    script = Script(
        [
            ok(listing([meeting(), instance("2026-03-09")], nextPageToken="P2")),
            ok(listing([ooo], nextSyncToken="SYNC-1")),
        ]
    )
    pages = list(events(service("calendar", "v3", script), None, opts(), now=NOW))
    first = script.params(0)
    assert first["singleEvents"] == "true" and first["timeMin"] == "2026-02-01T00:00:00Z"
    assert "syncToken" not in first
    assert script.params(1)["pageToken"] == "P2" and script.params(1)["timeMin"] == first["timeMin"]
    window = "2026-02-01T00:00:00Z"
    assert [p.cursor for p in pages] == [
        GcalCursor(page_token="P2", time_min=window),
        GcalCursor(sync_token="SYNC-1", time_min=window),
    ]
    assert pages[1].deleted == ["ooo1"] and pages[1].snapshot_end

    cancelled = {
        "kind": "calendar#event",
        "etag": '"339"',
        "id": "1a2b3c4d5e6f",
        "status": "cancelled",
    }
    script = Script([ok(listing([cancelled, instance("2026-03-16")], nextSyncToken="SYNC-2"))])
    pages = list(events(service("calendar", "v3", script), pages[1].cursor, opts(), now=NOW))
    params = script.params(0)
    assert params["syncToken"] == "SYNC-1" and params["singleEvents"] == "true"
    assert "timeMin" not in params  # 400 if combined with syncToken
    assert pages[0].deleted == ["1a2b3c4d5e6f"]
    assert [e["id"] for e in pages[0].records] == ["7h2k3recur_20260316T010000Z"]
    assert pages[0].cursor == GcalCursor(sync_token="SYNC-2", time_min=window)
    assert not pages[0].snapshot_end


def test_410_full_sync_required_and_403_rate_limit() -> None:
    # 410: a full pass over the window kept since the first sync, even a year later, ending
    # in an exact snapshot.
    window = "2025-01-01T00:00:00Z"
    script = Script([FULL_SYNC_410, ok(listing([meeting()], nextSyncToken="NEW"))])
    cur = GcalCursor(sync_token="OLD", time_min=window)
    pages = list(events(service("calendar", "v3", script), cur, opts(), now=NOW))
    assert script.params(0)["syncToken"] == "OLD"
    assert script.params(1)["timeMin"] == window and "syncToken" not in script.params(1)
    assert pages[-1].snapshot_end and pages[-1].cursor == GcalCursor(
        sync_token="NEW", time_min=window
    )
    # A cursor without a window (nothing to go back to) is the engine's to reset.
    script = Script([FULL_SYNC_410])
    with pytest.raises(ResyncRequired):
        list(events(service("calendar", "v3", script), GcalCursor(sync_token="OLD"), opts()))

    sleeps: list[float] = []
    script = Script([RATE_403, ok(listing([], nextSyncToken="S"))])
    pages = list(
        events(service("calendar", "v3", script), GcalCursor(sync_token="T"), opts(sleeps))
    )
    assert pages[0].cursor.sync_token == "S" and sleeps == [0.5]


def test_mapping_attendees_responses_rooms_and_direction() -> None:
    act = event_activity(meeting(), own_domains=["ourco.co.jp"])
    assert act.key == "meeting:demo-7781@google.com"
    assert act.occurred_at == datetime(2026, 3, 5, 5, 0, tzinfo=UTC)
    assert act.direction == "outbound" and act.status == "confirmed"
    got = {(p.email, p.role, p.response, p.internal) for p in act.participants}
    assert got == {
        (ACCOUNT, "organizer", None, True),
        ("taro@customer.co.jp", "attendee", "needs-action", False),
        ("jiro@ourco.co.jp", "attendee", "tentative", True),
    }
    assert act.attributes["rooms"] == ["会議室A"] and act.attributes["tzid"] == "Asia/Tokyo"


def test_instance_key_matches_the_ics_mapping_of_the_same_series() -> None:
    """The same weekly meeting seen through Google and through an .ics/CalDAV copy."""
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n"
        "BEGIN:VEVENT\r\n"
        "DTSTART;TZID=Asia/Tokyo:20260302T100000\r\nDTEND;TZID=Asia/Tokyo:20260302T103000\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=4\r\n"
        f"UID:{UID}\r\nSUMMARY:定例\r\n"
        "ORGANIZER;CN=Hanako:mailto:hanako@ourco.co.jp\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    from_ics = events_to_activities(
        ics,
        own_domains=["ourco.co.jp"],
        window_start=datetime(2026, 3, 1, tzinfo=UTC),
        window_end=datetime(2026, 4, 1, tzinfo=UTC),
    )
    google = event_activity(instance("2026-03-09"), own_domains=["ourco.co.jp"])
    assert google.key in {a.key for a in from_ics}
    assert google.key == f"meeting:{UID}/2026-03-09T01:00:00Z"

    all_day = meeting(
        id="ad_20260310",
        iCalUID="allday@google.com",
        recurringEventId="ad",
        originalStartTime={"date": "2026-03-10"},
        start={"date": "2026-03-10"},
        end={"date": "2026-03-11"},
    )
    act = event_activity(all_day, own_domains=["ourco.co.jp"])
    assert act.key == "meeting:allday@google.com/2026-03-10" and act.attributes["all_day"]


def test_zone_names_windows_mapped_unknown_refused() -> None:
    """A time without offset is read in its ``timeZone``: a Windows name through the CLDR
    table; an unknown name is refused rather than read in the workspace's zone."""
    windows = meeting(
        start={"dateTime": "2026-03-05T10:00:00", "timeZone": "W. Europe Standard Time"},
        end={"dateTime": "2026-03-05T11:00:00", "timeZone": "W. Europe Standard Time"},
    )
    act = event_activity(windows, own_domains=["ourco.co.jp"])
    assert act.occurred_at == datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    unknown = meeting(
        start={"dateTime": "2026-03-05T10:00:00", "timeZone": "Mars/Olympus"},
        end={"dateTime": "2026-03-05T11:00:00", "timeZone": "Mars/Olympus"},
    )
    with pytest.raises(BadRecord, match="'Mars/Olympus'"):
        event_activity(unknown, own_domains=["ourco.co.jp"])
    # With an offset the zone name does not matter.
    offset = meeting(start={"dateTime": "2026-03-05T10:00:00+09:00", "timeZone": "Mars/Olympus"})
    assert event_activity(offset, own_domains=["ourco.co.jp"]).occurred_at.hour == 1


def test_calendar_syncs_through_the_engine(engine: Engine, tmp_path: Path) -> None:
    ws = Workspace(
        company=Company(name="アワコ", domains=["ourco.co.jp"]), path=tmp_path / "k.yaml"
    )
    cfg = source_gcal.Config(accounts=[ACCOUNT], service_account_key_env="UNUSED")
    scripts = [
        Script([ok(listing([meeting(), instance("2026-03-09")], nextSyncToken="S1"))]),
        Script([ok(listing([{"id": "1a2b3c4d5e6f", "status": "cancelled"}], nextSyncToken="S2"))]),
    ]
    for i, script in enumerate(scripts):
        (spec,) = source_gcal.streams(
            "gcal",
            cfg,
            ws,
            service_for=lambda _a, s=script: service("calendar", "v3", s),
            options={"policy": RetryPolicy(sleep=lambda s: None), "budget": TokenBucket(1e3, 1e3)},
            now=lambda: NOW,
        )
        run_stream(engine, spec, f"r{i}")
    a = t.Activity
    with engine.connect() as conn:
        rows = dict(conn.execute(select(a.key, a.deleted_at)).all())
        people = conn.execute(select(t.PersonEmail.email)).scalars().all()
    assert rows.keys() == {"meeting:demo-7781@google.com", f"meeting:{UID}/2026-03-09T01:00:00Z"}
    assert rows["meeting:demo-7781@google.com"] is not None  # cancelled → retired
    assert rows[f"meeting:{UID}/2026-03-09T01:00:00Z"] is None
    assert people == ["taro@customer.co.jp"]


def test_stored_page_token_refused_restarts_the_sync() -> None:
    from tests.support.fakes.google_fakes import error

    bad = error(400, "invalid", "Invalid page token value.", google_status="INVALID_ARGUMENT")
    cur = GcalCursor(sync_token="S", page_token="stale")
    with pytest.raises(ResyncRequired):
        list(events(service("calendar", "v3", Script([bad])), cur, opts()))
