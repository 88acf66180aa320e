"""Graph JSON → activities, checked against the shared mail parser and the other calendars."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

from mappings.calendar.gcal import event_activity as gcal_event
from mappings.mail.graph import event_activity, message_activity, series_uid
from mappings.mail.message import parse_message
from tests.support.fakes.graph_fakes import address, message

OWN = ["ourco.co.jp"]
GOID_CLASS = bytes.fromhex("040000008200E00074C5B7101A82E008")


def goid(data: bytes, instance: tuple[int, int, int] | None = None) -> str:
    """An Exchange GlobalObjectId as Graph shows it in ``iCalUId`` (upper-case hex)."""
    date = b"\x00\x00\x00\x00"
    if instance:
        y, m, d = instance
        date = struct.pack(">HBB", y, m, d)
    creation = bytes.fromhex("80C9A3F2D44BDC01")
    return (
        (GOID_CLASS + date + creation + b"\x00" * 8 + struct.pack("<I", len(data)) + data)
        .hex()
        .upper()
    )


RAW_REPLY = (
    "Message-ID: <re-1@customer.co.jp>\r\n"
    "In-Reply-To: <root-1@ourco.co.jp>\r\n"
    "References: <root-1@ourco.co.jp>\r\n"
    "From: =?UTF-8?B?55Sw5LitIOWkqumDjg==?= <taro@customer.co.jp>\r\n"
    "To: jiro@ourco.co.jp\r\n"
    "Subject: =?UTF-8?B?UmU6IOOBiuimi+epjeOCig==?=\r\n"
    "Date: Tue, 03 Mar 2026 10:15:00 +0900\r\n"
    "\r\n"
)


def transport_headers(raw: str) -> list[dict[str, str]]:
    head = raw.split("\r\n\r\n", 1)[0]
    return [
        {"name": line.split(":", 1)[0], "value": line.split(":", 1)[1].strip()}
        for line in head.split("\r\n")
    ]


def test_received_mail_with_transport_headers_matches_the_mail_parser() -> None:
    msg = message(
        "AAMk-R",
        "<re-1@customer.co.jp>",
        subject="Re: お見積り",
        headers=transport_headers(RAW_REPLY),
    )
    act = message_activity(msg, own_domains=OWN)
    ref = parse_message(RAW_REPLY.encode(), own_domains=OWN, headers_only=True)
    assert act.source_id == "AAMk-R"
    assert (act.key, act.thread_key, act.direction, act.subject) == (
        ref.key,
        ref.thread_key,
        ref.direction,
        ref.subject,
    )
    assert act.thread_key == "mail:root-1@ourco.co.jp"
    assert act.participants == ref.participants
    assert act.snippet == "先日はありがとうございました。"
    assert act.attributes["graph"]["conversation_id"] == "AAQkAGI2TG93AAA="


def test_sent_item_without_headers_is_written_from_json() -> None:
    msg = message(
        "AAMk-S",
        "<sent-9@ourco.co.jp>",
        sender=("jiro@ourco.co.jp", "鈴木 次郎"),
        to=[("taro@customer.co.jp", "田中 太郎, 部長"), ("hanako@ourco.co.jp", "")],
        sent="2026-03-04T08:00:00.1234567Z",
    )
    msg["from"] = address("jiro@ourco.co.jp", "鈴木 次郎")
    msg["ccRecipients"] = [
        {
            "emailAddress": {
                "name": "Legacy",
                "address": "/O=EXCHANGELABS/OU=EXCHANGE/CN=RECIPIENTS/CN=ABC",
            }
        }
    ]
    act = message_activity(msg, own_domains=OWN, headers_only=True)
    assert act.key == "mail:sent-9@ourco.co.jp"
    assert act.direction == "outbound" and act.snippet is None
    assert act.occurred_at == datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    got = [(p.email, p.role, p.name) for p in act.participants]
    assert got == [
        ("jiro@ourco.co.jp", "from", "鈴木 次郎"),
        ("taro@customer.co.jp", "to", "田中 太郎, 部長"),
        ("hanako@ourco.co.jp", "to", None),
    ]


def test_series_uid_from_exchange_global_object_ids() -> None:
    empty_wrapper = goid(b"vCal-Uid\x01\x00\x00\x00\x00")  # no UID inside: keep the id
    plain = goid(bytes.fromhex("10000000A9D1B2B9F6D1DA4C8D1CE0E1A69B1DF0"))
    occurrence = goid(bytes.fromhex("10000000A9D1B2B9F6D1DA4C8D1CE0E1A69B1DF0"), (2026, 3, 9))
    assert series_uid(occurrence) == plain  # the instance date is zeroed
    assert series_uid(plain) == plain
    wrapped = goid(b"vCal-Uid\x01\x00\x00\x005r3k9q0mbd1c2e@google.com\x00", (2026, 3, 9))
    assert series_uid(wrapped) == "5r3k9q0mbd1c2e@google.com"
    assert series_uid("not-a-goid@example.com") == "not-a-goid@example.com"
    assert series_uid(empty_wrapper) == empty_wrapper


def graph_event(**over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": 'W/"ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ=="',
        "id": "AAMkAGI2-ev1",
        "createdDateTime": "2026-02-20T02:00:00.0000000Z",
        "lastModifiedDateTime": "2026-02-21T03:30:00.1234567Z",
        "iCalUId": goid(bytes.fromhex("10000000A9D1B2B9F6D1DA4C8D1CE0E1A69B1DF0")),
        "subject": "製品デモ",
        "bodyPreview": "デモ環境のご案内",
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": True,
        "showAs": "busy",
        "type": "singleInstance",
        "webLink": "https://outlook.office365.com/owa/?itemid=AAMk",
        "start": {"dateTime": "2026-03-05T05:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-05T06:00:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": "Tokyo Standard Time",
        "location": {"displayName": "本社 3F 会議室A", "locationType": "default"},
        "organizer": address("jiro@ourco.co.jp", "鈴木 次郎"),
        "attendees": [
            {
                "type": "required",
                "status": {"response": "accepted", "time": "2026-02-21T00:00:00Z"},
                **address("taro@customer.co.jp", "田中 太郎"),
            },
            {
                "type": "optional",
                "status": {"response": "tentativelyAccepted", "time": "0001-01-01T00:00:00Z"},
                **address("hanako@ourco.co.jp", "佐藤 花子"),
            },
            {
                "type": "optional",
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                **address("ichiro@partner.co.jp"),
            },
            {
                "type": "resource",
                "status": {"response": "accepted"},
                **address("room-3a@ourco.co.jp", "会議室A"),
            },
        ],
    }
    ev.update(over)
    return ev


def test_event_participants_responses_rooms_and_direction() -> None:
    act = event_activity(graph_event(), own_domains=OWN)
    assert act.key == "meeting:" + series_uid(graph_event()["iCalUId"])
    assert act.occurred_at == datetime(2026, 3, 5, 5, 0, tzinfo=UTC)
    assert act.direction == "outbound" and act.location == "本社 3F 会議室A"
    got = {(p.email, p.role, p.response) for p in act.participants}
    assert got == {
        ("jiro@ourco.co.jp", "organizer", None),
        ("taro@customer.co.jp", "attendee", "accepted"),
        ("hanako@ourco.co.jp", "attendee", "tentative"),
        ("ichiro@partner.co.jp", "attendee", "needs-action"),
    }
    assert act.attributes["rooms"] == ["会議室A"]
    cancelled = event_activity(graph_event(isCancelled=True), own_domains=OWN)
    assert cancelled.status == "cancelled"


def test_occurrence_of_a_google_meeting_has_the_same_key_in_graph_and_google() -> None:
    """A weekly meeting organised in Google Calendar, accepted by an Exchange mailbox."""
    uid = "5r3k9q0mbd1c2e@google.com"
    occurrence = graph_event(
        id="AAMkAGI2-occ",
        type="occurrence",
        seriesMasterId="AAMkAGI2-master",
        iCalUId=goid(b"vCal-Uid\x01\x00\x00\x00" + uid.encode() + b"\x00", (2026, 3, 9)),
        originalStart="2026-03-09T01:00:00Z",
        start={"dateTime": "2026-03-09T01:00:00.0000000", "timeZone": "UTC"},
        end={"dateTime": "2026-03-09T01:30:00.0000000", "timeZone": "UTC"},
    )
    google_instance = {
        "id": "7h2k3recur_20260309T010000Z",
        "iCalUID": uid,
        "status": "confirmed",
        "summary": "定例",
        "recurringEventId": "7h2k3recur",
        "originalStartTime": {"dateTime": "2026-03-09T10:00:00+09:00", "timeZone": "Asia/Tokyo"},
        "start": {"dateTime": "2026-03-09T10:00:00+09:00", "timeZone": "Asia/Tokyo"},
        "end": {"dateTime": "2026-03-09T10:30:00+09:00", "timeZone": "Asia/Tokyo"},
    }
    g = event_activity(occurrence, own_domains=OWN)
    assert g.key == gcal_event(google_instance, own_domains=OWN).key
    assert g.key == f"meeting:{uid}/2026-03-09T01:00:00Z"
    assert g.attributes["recurring"] is True
