"""What one message yields besides itself (issue 16): the meetings of a mailed invitation,
the inner messages of a forward; each bounded, each unreadable part noted on the mail."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from mappings.mail.forward import MAX_FORWARDED, parse_loose_date
from mappings.mail.invite import MAX_CALENDAR_BYTES
from mappings.mail.records import parse_mail

OWN = ["ourco.co.jp"]
HEAD = (
    "From: sato@client.co.jp\r\nTo: tanaka@ourco.co.jp\r\n"
    "Date: Tue, 01 Oct 2024 10:00:00 +0900\r\nMessage-ID: <m1@client.co.jp>\r\n"
)


def _with_calendars(*ics: str, subject: str = "招待") -> bytes:
    parts = "".join(
        f"--B\r\nContent-Type: text/calendar; charset=utf-8\r\n\r\n{c}\r\n" for c in ics
    )
    return (
        f"{HEAD}Subject: {subject}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        f"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n本文\r\n{parts}--B--\r\n"
    ).encode()


def _cal(body: str, method: str | None = "REQUEST") -> str:
    m = f"METHOD:{method}\r\n" if method else ""
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{m}BEGIN:VEVENT\r\n{body}END:VEVENT\r\nEND:VCALENDAR"


EVENT = (
    "UID:e1@client.co.jp\r\nDTSTART:20241010T010000Z\r\nDTEND:20241010T020000Z\r\nSUMMARY:定例\r\n"
)


def test_a_weekly_series_mailed_becomes_its_occurrences_within_a_year() -> None:
    weekly = EVENT + "RRULE:FREQ=WEEKLY;COUNT=80\r\n"
    acts = parse_mail(_with_calendars(_cal(weekly)), own_domains=OWN)
    meetings = [a for a in acts if a.kind == "meeting"]
    # 80 weekly occurrences from 10 Oct 2024; those past a year after the mail are not kept.
    assert len(meetings) == 51  # 10 Oct 2024 + 50 weeks = 25 Sep 2025, the last in the year
    assert meetings[0].key == "meeting:e1@client.co.jp/2024-10-10T01:00:00Z"
    assert acts[0].attributes["meetings_total"] == 51
    assert len(acts[0].attributes["meetings"]) == 50


def test_a_calendar_attachment_without_method_is_published_and_a_broken_one_noted() -> None:
    acts = parse_mail(_with_calendars(_cal(EVENT, method=None)), own_domains=OWN)
    assert [a.kind for a in acts] == ["invitation", "meeting"]
    broken = parse_mail(_with_calendars("BEGIN:VCALENDAR\r\ngarbage"), own_domains=OWN)
    assert len(broken) == 1 and "calendar_error" in broken[0].attributes
    sub_daily = _cal(EVENT + "RRULE:FREQ=MINUTELY\r\n")
    refused = parse_mail(_with_calendars(sub_daily), own_domains=OWN)
    assert len(refused) == 1 and "MINUTELY" in refused[0].attributes["calendar_error"]


def test_calendar_parts_are_bounded_in_count_and_size() -> None:
    many = [_cal(EVENT.replace("e1@", f"e{i}@")) for i in range(10)]
    acts = parse_mail(_with_calendars(*many), own_domains=OWN)
    assert len([a for a in acts if a.kind == "meeting"]) == 3
    huge = _cal(EVENT + "DESCRIPTION:" + "x" * MAX_CALENDAR_BYTES + "\r\n")
    started = time.perf_counter()
    acts = parse_mail(_with_calendars(huge), own_domains=OWN)
    assert time.perf_counter() - started < 2
    assert len(acts) == 1 and "bytes (limit" in acts[0].attributes["calendar_error"]


def _plain(subject: str, body: str) -> bytes:
    return (
        f"{HEAD}Subject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


OUTLOOK_JP = (
    "ご確認ください。\r\n\r\n________________________________\r\n"
    "-----Original Message-----\r\n差出人: 鈴木 <suzuki@partner.co.jp>\r\n"
    "送信日時: 2024年9月30日 17:45\r\n宛先: sato@client.co.jp\r\nCC: a@partner.co.jp\r\n"
    "件名: 見積依頼\r\n\r\n見積をお願いします。\r\n"
)
APPLE = (
    "FYI\r\n\r\nBegin forwarded message:\r\n\r\nFrom: Ann <ann@partner.example>\r\n"
    "Subject: order\r\nDate: September 30, 2024 at 17:45:00 GMT+9\r\nTo: sato@client.co.jp\r\n\r\n"
    "ship it\r\n"
)


@pytest.mark.parametrize(
    ("subject", "body", "sender", "at"),
    [
        (
            "FW: 見積依頼",
            OUTLOOK_JP,
            "suzuki@partner.co.jp",
            datetime(2024, 9, 30, 8, 45, tzinfo=UTC),
        ),
        ("Fwd: order", APPLE, "ann@partner.example", datetime(2024, 9, 30, 8, 45, tzinfo=UTC)),
    ],
    ids=["outlook-ja", "apple"],
)
def test_inline_forwards_of_each_mail_program(
    subject: str, body: str, sender: str, at: datetime
) -> None:
    outer, inner = parse_mail(_plain(subject, body), own_domains=OWN)
    assert outer.kind == "forward" and outer.attributes["forwarded"] == [inner.key]
    assert inner.participants[0].email == sender and inner.occurred_at == at
    assert inner.timeline is False and inner.attributes["forwarded_in"] == outer.key


def test_a_reply_quoting_the_original_is_no_forward() -> None:
    """Outlook writes "-----Original Message-----" above a quoted reply too: only under a
    forward's subject is it a forward."""
    acts = parse_mail(_plain("RE: 見積依頼", OUTLOOK_JP), own_domains=OWN)
    assert [a.kind for a in acts] == ["email"]


def test_forwards_are_bounded_and_linear() -> None:
    block = "---------- Forwarded message ---------\r\nFrom: x@partner.example\r\n\r\nbody\r\n"
    started = time.perf_counter()
    acts = parse_mail(_plain("Fwd: many", block * 20_000), own_domains=OWN)
    assert len(acts) == 1 + MAX_FORWARDED
    markers = parse_mail(
        _plain("Fwd: x", "-----Original Message-----\r\n" * 50_000), own_domains=OWN
    )
    assert len(markers) == 1
    assert time.perf_counter() - started < 5
    assert parse_loose_date("年" * 10_000 + "2024年1月2日 3:04", UTC) is None  # cut at 120 chars
