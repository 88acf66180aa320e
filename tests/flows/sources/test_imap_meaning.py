"""Mail with meaning over IMAP (issue 16), against Dovecot and Radicale: a meeting a CalDAV
calendar holds is cancelled by the ``METHOD:CANCEL`` mailed later (one meeting, two sources);
a mailed invitation for an event no calendar has creates the meeting; a forward's inner
message is its own record; a DSN names its bounced recipient and is no contact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from flows.engine import run_stream
from flows.sources import caldav as source_caldav
from flows.sources import imap as source_imap
from flows.workspace import Company, Workspace
from tests.connectors.calendar.test_connectors_caldav import event
from tests.support.servers import PASSWORD, Dovecot, Radicale
from warehouse import schema as t

WS = Workspace(company=Company(name="絆", domains=["kizuna.example"]))
NOW = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIZUNA_TEST_IMAP_PW", PASSWORD)


def _itip(mid: str, method: str, date: str, ics: str) -> bytes:
    return (
        f"From: sato@kizuna.example\r\nTo: tanaka@customer.co.jp\r\nDate: {date}\r\n"
        f"Message-ID: <{mid}>\r\nSubject: {method}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nご確認ください\r\n"
        f"--B\r\nContent-Type: text/calendar; method={method}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        + ics.replace("VERSION:2.0\r\n", f"VERSION:2.0\r\nMETHOD:{method}\r\n")
        + "\r\n--B--\r\n"
    ).encode()


FORWARD = (
    "From: sato@kizuna.example\r\nTo: yamada@partner.example\r\n"
    "Date: Tue, 17 Nov 2026 09:00:00 +0900\r\nMessage-ID: <fwd@kizuna.example>\r\n"
    'Subject: Fwd: 発注\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="F"\r\n'
    "\r\n--F\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n転送します\r\n"
    "--F\r\nContent-Type: message/rfc822\r\n\r\n"
    "From: 田中 <tanaka@customer.co.jp>\r\nTo: sato@kizuna.example\r\n"
    "Date: Mon, 16 Nov 2026 18:30:00 +0900\r\nMessage-ID: <order@customer.co.jp>\r\n"
    "Subject: order\r\n\r\nplease ship\r\n--F--\r\n"
).encode()

DSN = (
    b"From: MAILER-DAEMON@mx.customer.co.jp\r\nTo: sato@kizuna.example\r\n"
    b"Date: Tue, 17 Nov 2026 10:00:00 +0900\r\nMessage-ID: <dsn@mx.customer.co.jp>\r\n"
    b"Subject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
    b"--R\r\nContent-Type: text/plain\r\n\r\nsorry\r\n"
    b"--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
    b"Final-Recipient: rfc822; gone@customer.co.jp\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    b"\r\n--R\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    b"From: sato@kizuna.example\r\nTo: gone@customer.co.jp\r\nMessage-ID: <kz.x@kizuna.example>\r\n"
    b"\r\n--R--\r\n"
)


def _rows(engine: Engine) -> dict[str, Any]:
    a = t.Activity
    with engine.connect() as conn:
        rows = conn.execute(
            select(a.key, a.kind, a.status, a.timeline, a.subject, a.attributes, a.occurred_at)
        ).all()
    return {r.key: r for r in rows}


def test_mailed_cancel_cancels_the_caldav_meeting_and_forwards_and_bounces_mean_something(
    engine: Engine, dovecot_server: Dovecot, radicale_server: Radicale
) -> None:
    url, cal_user = radicale_server.new_calendar()
    radicale_server.put(url, cal_user, "a.ics", event("mtg-a@kizuna", "定例", seq=1))
    caldav = source_caldav.Config(url=radicale_server.url, username=cal_user, calendars=[url])
    run_stream(engine, source_caldav.streams("cal", caldav, WS, now=NOW)[0], "r1")
    assert _rows(engine)["meeting:mtg-a@kizuna"].status == "confirmed"

    user = dovecot_server.new_user()
    cancel = event("mtg-a@kizuna", "定例", seq=1)  # the same SEQUENCE, sent after the copy
    dovecot_server.append(
        user,
        "INBOX",
        _itip("c1@kizuna.example", "CANCEL", "Wed, 18 Nov 2026 09:00:00 +0900", cancel),
    )
    new = event("mtg-b@kizuna", "新規提案", start="20261201T020000Z")
    dovecot_server.append(
        user, "INBOX", _itip("r1@kizuna.example", "REQUEST", "Tue, 17 Nov 2026 09:00:00 +0900", new)
    )
    dovecot_server.append(user, "INBOX", FORWARD)
    dovecot_server.append(user, "INBOX", DSN)
    undated = b"From: tanaka@customer.co.jp\r\nTo: sato@kizuna.example\r\nSubject: x\r\n\r\nb\r\n"
    dovecot_server.append(user, "INBOX", undated)
    cc = ", ".join(f"u{i}@customer.co.jp" for i in range(30))
    crowded = FORWARD.replace(b"<fwd@", b"<many@").replace(
        b"Subject:", f"Cc: {cc}\r\nSubject:".encode()
    )
    dovecot_server.append(user, "INBOX", crowded)
    imap = source_imap.Config(
        host=dovecot_server.host,
        port=dovecot_server.port,
        security="none",
        username=user,
        password_env="KIZUNA_TEST_IMAP_PW",
        folders=["INBOX"],
        privacy={"capture": "all"},
        max_recipients=20,
    )
    (spec,) = source_imap.streams("mailbox", imap, WS, now=NOW)
    run_stream(engine, spec, "r2")
    run_stream(engine, spec, "r3")  # nothing new, nothing piles up
    rows = _rows(engine)

    # One meeting, read from the calendar and cancelled by mail.
    a = rows["meeting:mtg-a@kizuna"]
    assert (a.kind, a.status, a.subject) == ("meeting", "cancelled", "定例")
    assert rows["mail:c1@kizuna.example"].attributes["meetings"] == ["meeting:mtg-a@kizuna"]
    b = rows["meeting:mtg-b@kizuna"]
    assert (b.status, b.subject, b.occurred_at.replace(tzinfo=UTC)) == (
        "confirmed",
        "新規提案",
        datetime(2026, 12, 1, 2, tzinfo=UTC),
    )
    with engine.connect() as conn:
        sr = t.SourceRecord
        lineage = conn.execute(
            select(sr.connector)
            .join(t.Activity, t.Activity.id == sr.entity_id)
            .where(sr.entity == "activity", t.Activity.key == "meeting:mtg-a@kizuna")
        ).scalars()
        assert sorted(lineage) == ["cal", "mailbox"]

    fwd = rows["mail:fwd@kizuna.example"]
    (inner_key,) = fwd.attributes["forwarded"]
    inner = rows[inner_key]
    assert (fwd.kind, inner.kind, inner.timeline, inner.subject) == (
        "forward",
        "email",
        False,
        "order",
    )
    assert inner.occurred_at.replace(tzinfo=UTC) == datetime(2026, 11, 16, 9, 30, tzinfo=UTC)

    dsn = rows["mail:dsn@mx.customer.co.jp"]
    assert (dsn.kind, dsn.timeline) == ("bounce", False)
    assert dsn.attributes["bounced"] == [
        {"email": "gone@customer.co.jp", "action": "failed", "status": "5.1.1"}
    ]
    assert dsn.attributes["bounced_message_id"] == "kz.x@kizuna.example"
    assert len(rows) == 7  # 4 mails, 2 meetings, 1 forwarded copy
    with engine.connect() as conn:
        entries = conn.execute(select(t.Quarantine.source_id, t.Quarantine.reason)).all()
    # Keyed by the folder and UID the source reads it by, so it closes when the mail is fixed;
    # the recipients limit is a setting of the imap source as of the mail one.
    assert all(e.source_id.startswith("INBOX") for e in entries)
    assert sorted(e.reason.split(":")[0].split(" (")[0] for e in entries) == [
        "more than 20 recipients",
        "no usable date",
    ]
