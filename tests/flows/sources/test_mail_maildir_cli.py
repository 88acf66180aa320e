"""A Maildir built with the cases of issue 16 (Dovecot file names, ``tmp/`` never read, each
charset, bounces, auto-replies, invitations, forwards, broken deliveries), run through
``kizuna sync`` and checked with ``kizuna export activities`` and ``kizuna quarantine --json``:
every file either lands with the right fields or is quarantined with its path and reason.
``kizuna export crosswalk`` names each mail record's message file (Maildir, mbox, eml)."""

from __future__ import annotations

import json
from collections import Counter
from email.header import Header
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from flows.cli.main import app
from warehouse.records import CONTACT_KINDS

runner = CliRunner()
DATE = "Date: Tue, 01 Oct 2024 10:00:00 +0900\r\n"


def _msg(
    mid: str, head: str, body: str = "本文です", ctype: str = "text/plain; charset=utf-8"
) -> bytes:
    return (
        f"From: 佐藤 <sato@client.co.jp>\r\nTo: tanaka@ourco.co.jp\r\n{DATE}"
        f"Message-ID: <{mid}>\r\n{head}MIME-Version: 1.0\r\nContent-Type: {ctype}\r\n\r\n{body}\r\n"
    ).encode()


DSN = (
    "From: MAILER-DAEMON@mx.client.co.jp (Mail Delivery System)\r\nTo: tanaka@ourco.co.jp\r\n"
    f"{DATE}Message-ID: <dsn1@mx.client.co.jp>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
    "\r\n--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
    "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
    "Final-Recipient: rfc822; gone@client.co.jp\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    "\r\n--B--\r\n"
).encode()

INVITE = (
    f"From: sato@client.co.jp\r\nTo: tanaka@ourco.co.jp\r\n{DATE}Message-ID: <inv1@client.co.jp>\r\n"
    'Subject: 招待: 定例\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n'
    "\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nご招待します\r\n"
    "\r\n--B\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n"
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:mtg-1@client.co.jp\r\n"
    "DTSTART:20241010T010000Z\r\nDTEND:20241010T020000Z\r\nSUMMARY:定例\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n\r\n--B--\r\n"
).encode()


def _itip(mid: str, method: str, date: str, event: str) -> bytes:
    return (
        f"From: sato@client.co.jp\r\nTo: tanaka@ourco.co.jp\r\nDate: {date}\r\n"
        f"Message-ID: <{mid}>\r\nSubject: {method}: 定例\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/calendar; method={method}; charset=utf-8\r\n\r\n"
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:{method}\r\nBEGIN:VEVENT\r\n{event}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


MTG = "UID:mtg-1@client.co.jp\r\nDTSTART:20241010T010000Z\r\nDTEND:20241010T020000Z\r\n"
CANCEL = _itip(
    "cancel1@client.co.jp", "CANCEL", "Wed, 02 Oct 2024 15:00:00 +0900", MTG + "SUMMARY:定例\r\n"
)
REPLY = _itip(
    "reply1@client.co.jp",
    "REPLY",
    "Tue, 01 Oct 2024 12:00:00 +0900",
    MTG + "ATTENDEE;PARTSTAT=ACCEPTED:mailto:sato@client.co.jp\r\n",
)
INLINE_FORWARD = (
    f"From: tanaka@ourco.co.jp\r\nTo: boss@ourco.co.jp\r\n{DATE}Message-ID: <fwd2@ourco.co.jp>\r\n"
    "Subject: Fwd: 見積\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nご確認ください。\r\n\r\n"
    "---------- Forwarded message ---------\r\nFrom: 佐藤 一郎 <sato@client.co.jp>\r\n"
    "Date: 2024年9月30日(月) 18:05\r\nSubject: 見積\r\nTo: <tanaka@ourco.co.jp>\r\n\r\n"
    "見積を添付します。\r\n"
).encode()

FORWARD = (
    f"From: tanaka@ourco.co.jp\r\nTo: boss@client.co.jp\r\n{DATE}Message-ID: <fwd1@ourco.co.jp>\r\n"
    'Subject: Fwd: 見積\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n'
    "\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n転送します\r\n"
    "\r\n--B\r\nContent-Type: message/rfc822\r\n\r\n"
    "From: inner@other.co.jp\r\nTo: tanaka@ourco.co.jp\r\nSubject: 見積\r\n"
    f"{DATE}Message-ID: <inner1@other.co.jp>\r\n\r\n内側\r\n\r\n--B--\r\n"
).encode()

STUB = (
    f"From: news@client.co.jp\r\nTo: tanaka@ourco.co.jp\r\n{DATE}Message-ID: <stub1@client.co.jp>\r\n"
    'Subject: ご案内\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="B"\r\n'
    "\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nView this mail as HTML.\r\n"
    "\r\n--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>"
    + "新製品のご案内です。" * 30
    + "</p></body></html>\r\n\r\n--B--\r\n"
).encode()


def _nest(depth: int) -> bytes:
    head = f"From: sato@client.co.jp\r\nTo: tanaka@ourco.co.jp\r\n{DATE}Message-ID: <deep@x>\r\n"
    body = "Content-Type: text/plain\r\n\r\nleaf\r\n"
    for i in range(depth):
        body = f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n{body}\r\n--b{i}--\r\n'
    return (head + "MIME-Version: 1.0\r\n" + body).encode()


FILES: dict[str, bytes] = {
    "cur/1727744400.M1P1.mx,S=300,W=310:2,S": _msg("plain@client.co.jp", "Subject: 見積の件\r\n"),
    "cur/1727744401.M2P1.mx,S=300,W=310:2,RS": (
        f"From: {Header('佐藤', 'iso-2022-jp').encode()} <sato@client.co.jp>\r\n"
        f"To: tanaka@ourco.co.jp\r\n{DATE}Message-ID: <jis@client.co.jp>\r\n"
        f"Subject: {Header('見積', 'iso-2022-jp').encode()}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
    ).encode()
    + "お世話になります".encode("iso-2022-jp")
    + b"\r\n",
    "cur/1727744402.M3P1.mx,S=300:2,": _msg(
        "sjis@client.co.jp", "Subject: sjis\r\n", ctype="text/plain; charset=Shift_JIS"
    ).replace("本文です".encode(), "①至急～確認".encode("cp932")),
    "new/1727744403.M4P1.mx": DSN,
    "new/1727744404.M5P1.mx": _msg(
        "ooo@client.co.jp", "Subject: 自動応答: 不在\r\nAuto-Submitted: auto-replied\r\n"
    ),
    "new/1727744405.M6P1.mx": INVITE,
    "new/1727744406.M7P1.mx": FORWARD,
    "new/1727744407.M8P1.mx": STUB,
    "new/1727744408.M9P1.mx": _msg("nosubject@client.co.jp", "Subject: \r\n"),
    "new/1727744409.M10P1.mx": _msg(
        "many@client.co.jp",
        "Subject: all\r\nCc: " + ", ".join(f"u{i}@c.jp" for i in range(50)) + "\r\n",
    ),
    "new/1727744410.M11P1.mx": _nest(8),
    "new/1727744411.M12P1.mx": f'{DATE}Subject: cut\r\nFrom: "Sato'.encode(),
    "new/1727744412.M13P1.mx": b"\x00\x01\x02 not mail at all",
    ".Sent/cur/1727744413.M14P1.mx,S=300:2,S": _msg("plain@client.co.jp", "Subject: 見積の件\r\n"),
    "new/1727744415.M16P1.mx": (
        f'From: "john.doe"@client.co.jp\r\nTo: "sales team"@ourco.co.jp\r\n{DATE}'
        'Cc: =?utf-8?b?5L2Q6Jek?= <sato@例え.jp>, x@XN--R8JZ45G.jp, john.doe"@broken.jp\r\n'
        "Message-ID: <idn@client.co.jp>\r\nSubject: addr\r\n\r\nbody\r\n"
    ).encode(),
    "new/1727744416.M17P1.mx": CANCEL,
    "new/1727744417.M18P1.mx": REPLY,
    "new/1727744418.M19P1.mx": INLINE_FORWARD,
    "tmp/1727744414.M15P1.mx": _msg("partial@client.co.jp", "Subject: half written\r\n"),
}


def _workspace(tmp_path: Path) -> Path:
    root = tmp_path / "Maildir"
    for d in ("cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    ws: dict[str, Any] = {
        "company": {"name": "株式会社アワコ", "domains": ["ourco.co.jp"]},
        "warehouse": {"url": "sqlite:///wh.db"},
        "sources": {
            "box": {
                "type": "mail",
                "path": "Maildir",
                "max_recipients": 20,
                "max_mime_depth": 5,
            }
        },
    }
    p = tmp_path / "kizuna.yaml"
    p.write_text(yaml.safe_dump(ws, allow_unicode=True), encoding="utf-8")
    return p


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_maildir_through_sync_and_export(prefect_harness: None, tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    box = tmp_path / "Maildir"
    for n in range(3):  # a second sync changes nothing and piles up nothing
        out = runner.invoke(app, ["sync", "-w", str(ws)])
        assert out.exit_code == 0, out.output
        if n == 1:  # a mail client reads and flags (new/ → cur/, flags renamed): the same
            # source records (the path shown is where the bytes were read), no duplicates
            (box / "new/1727744405.M6P1.mx").rename(box / "cur/1727744405.M6P1.mx:2,S")
            (box / "cur/1727744400.M1P1.mx,S=300,W=310:2,S").rename(
                box / "cur/1727744400.M1P1.mx,S=300,W=310:2,FRS"
            )
    exported = runner.invoke(app, ["export", "activities", "-w", str(ws)])
    assert exported.exit_code == 0, exported.output
    acts = {a["key"]: a for a in _lines(exported.stdout)}
    assert "mail:partial@client.co.jp" not in acts  # tmp/ is never read
    plain = acts["mail:plain@client.co.jp"]  # one activity for the copy in INBOX and Sent
    assert (plain["kind"], plain["timeline"], plain["subject"]) == ("email", True, "見積の件")
    assert plain["from"] == "sato@client.co.jp" and plain["text"].strip() == "本文です"
    assert plain["date"] == "2024-10-01T01:00:00+00:00"
    assert [(s["id"], s["path"]) for s in plain["sources"]] == [  # both files, one activity
        (".Sent/1727744413.M14P1.mx,S=300", "Maildir/.Sent/cur/1727744413.M14P1.mx,S=300:2,S"),
        ("1727744400.M1P1.mx,S=300,W=310", "Maildir/cur/1727744400.M1P1.mx,S=300,W=310:2,S"),
    ]
    jis = acts["mail:jis@client.co.jp"]
    assert jis["subject"] == "見積" and jis["text"].strip() == "お世話になります"
    assert acts["mail:sjis@client.co.jp"]["text"].strip() == "①至急～確認"
    dsn = acts["mail:dsn1@mx.client.co.jp"]
    assert (dsn["kind"], dsn["timeline"]) == ("bounce", False)
    assert dsn["attributes"]["bounced"] == [
        {"email": "gone@client.co.jp", "action": "failed", "status": "5.1.1"}
    ]
    ooo = acts["mail:ooo@client.co.jp"]
    assert (ooo["kind"], ooo["timeline"]) == ("auto_reply", False)
    invite = acts["mail:inv1@client.co.jp"]
    assert invite["kind"] == "invitation" and invite["attributes"]["calendar_method"] == "REQUEST"
    assert invite["attributes"]["meetings"] == ["meeting:mtg-1@client.co.jp"]
    # The invitation made the meeting; the CANCEL mailed the next day cancelled it.
    meeting = acts["meeting:mtg-1@client.co.jp"]
    assert (meeting["kind"], meeting["status"], meeting["subject"]) == (
        "meeting",
        "cancelled",
        "定例",
    )
    assert meeting["date"] == "2024-10-10T01:00:00+00:00"
    assert {Path(s["path"]).name for s in meeting["sources"]} == {
        "1727744405.M6P1.mx",
        "1727744416.M17P1.mx",
    }
    reply = acts["mail:reply1@client.co.jp"]["attributes"]
    assert reply["reply"] == {
        "uid": "mtg-1@client.co.jp",
        "attendee": "sato@client.co.jp",
        "partstat": "ACCEPTED",
    }
    fwd = acts["mail:fwd1@ourco.co.jp"]
    assert fwd["kind"] == "forward" and fwd["from"] == "tanaka@ourco.co.jp"
    assert {p["email"] for p in fwd["participants"]} == {"tanaka@ourco.co.jp", "boss@client.co.jp"}
    assert fwd["attachments"] == ["message/rfc822"]
    # The forwarded message is its own record: its own sender and date, off the timeline.
    (inner_key,) = fwd["attributes"]["forwarded"]
    inner = acts[inner_key]
    assert (inner["from"], inner["timeline"], inner["subject"]) == (
        "inner@other.co.jp",
        False,
        "見積",
    )
    assert inner["attributes"]["forwarded_in"] == "mail:fwd1@ourco.co.jp"
    inline = acts[acts["mail:fwd2@ourco.co.jp"]["attributes"]["forwarded"][0]]
    assert (inline["from"], inline["date"]) == ("sato@client.co.jp", "2024-09-30T09:05:00+00:00")
    assert inline["text"] == "見積を添付します。" and inline["timeline"] is False
    assert "新製品のご案内です" in acts["mail:stub1@client.co.jp"]["text"]
    assert acts["mail:nosubject@client.co.jp"]["subject"] == ""
    idn = acts["mail:idn@client.co.jp"]  # RFC 5322 addresses: quoted, IDN, one broken
    assert idn["from"] == "john.doe@client.co.jp"
    assert {(p["email"], p.get("shown"), p["role"]) for p in idn["participants"]} == {
        ("john.doe@client.co.jp", None, "from"),
        ('"sales team"@ourco.co.jp', None, "to"),
        ("sato@xn--r8jz45g.jp", "sato@例え.jp", "cc"),
        ("x@xn--r8jz45g.jp", "x@例え.jp", "cc"),
    }

    listed = runner.invoke(app, ["quarantine", "--json", "-w", str(ws)])
    assert listed.exit_code == 0, listed.output
    bad = {Path(q["path"]).name: q["reason"] for q in _lines(listed.stdout)}
    assert set(bad) == {
        "1727744409.M10P1.mx",
        "1727744410.M11P1.mx",
        "1727744411.M12P1.mx",
        "1727744412.M13P1.mx",
    }
    assert "recipients" in bad["1727744409.M10P1.mx"]
    assert "nested deeper than 5" in bad["1727744410.M11P1.mx"]
    assert "cut off" in bad["1727744411.M12P1.mx"]
    assert all(q["path"].startswith("Maildir/new/") for q in _lines(listed.stdout))
    table = runner.invoke(app, ["quarantine", "-w", str(ws)])
    assert "Maildir/new/1727744411.M12P1.mx" in table.stdout and "sha:" not in table.stdout

    # Exact counts: 18 files outside tmp/, 4 quarantined, 14 landed as 15 sources of 13
    # messages (the INBOX/Sent pair is one), plus the meeting and the two forwarded copies.
    files = [n for n in FILES if not n.startswith("tmp/")]
    landed = [s["path"] for a in acts.values() for s in a["sources"] if a["kind"] != "meeting"]
    assert (len(files), len(bad), len(set(landed))) == (18, 4, 14)
    assert Counter((a["kind"], a["timeline"]) for a in acts.values()) == {
        ("email", True): 6,  # plain, ISO-2022-JP, Shift_JIS, stub, no subject, IDN
        ("bounce", False): 1,
        ("auto_reply", False): 1,
        ("invitation", True): 3,  # REQUEST, CANCEL, REPLY
        ("forward", True): 2,
        ("email", False): 2,  # the forwarded copies
        ("meeting", True): 1,
    }
    contact = [a for a in acts.values() if a["timeline"] and a["kind"] in CONTACT_KINDS]
    assert len(contact) == 12


def _plain(mid: str, sender: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: tanaka@ourco.co.jp\r\nDate: Tue, 01 Oct 2024 10:00:00 +0900\r\n"
        f"Message-ID: <{mid}>\r\nSubject: 見積\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "\r\n本文\r\n"
    ).encode()


def test_crosswalk_gives_the_message_file_of_mail_records(tmp_path: Path) -> None:
    maildir = tmp_path / "mail" / "box"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    md_name = "1727744400.M1P1.mx,S=300:2,S"
    (maildir / "cur" / md_name).write_bytes(_plain("a1@client.co.jp", "佐藤 <sato@client.co.jp>"))
    mbox = tmp_path / "mail" / "archive.mbox"
    first = b"From sato@client.co.jp Tue Oct  1 10:00:00 2024\n" + _plain(
        "b1@other.co.jp", "鈴木 <suzuki@other.co.jp>"
    ).replace(b"\r\n", b"\n")
    second = b"\nFrom x Tue Oct  1 10:00:00 2024\n" + _plain(
        "b2@third.co.jp", "高橋 <takahashi@third.co.jp>"
    ).replace(b"\r\n", b"\n")
    mbox.write_bytes(first + second)
    (tmp_path / "eml").mkdir()
    (tmp_path / "eml" / "one.eml").write_bytes(_plain("c1@fourth.co.jp", "伊藤 <ito@fourth.co.jp>"))
    ws_file = tmp_path / "kizuna.yaml"
    ws_file.write_text(
        yaml.safe_dump(
            {
                "company": {"name": "テスト", "domains": ["ourco.co.jp"]},
                "warehouse": {"url": f"sqlite:///{tmp_path / 'wh.db'}"},
                "sources": {
                    "md": {"type": "mail", "path": "mail/box", "format": "maildir"},
                    "mb": {"type": "mail", "path": "mail/archive.mbox", "format": "mbox"},
                    "em": {"type": "mail", "path": "eml", "format": "eml"},
                },
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    out = runner.invoke(app, ["sync", "-w", str(ws_file)])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["export", "crosswalk", "-f", "jsonl", "-w", str(ws_file)])
    assert out.exit_code == 0, out.output
    lines = [json.loads(x) for x in out.output.splitlines() if x.startswith("{")]
    by_id = {x["source_id"]: x for x in lines}
    assert by_id["address:sato@client.co.jp"]["file"] == f"mail/box/cur/{md_name}"
    assert by_id["address:suzuki@other.co.jp"]["file"] == "mail/archive.mbox#0"
    offset = len(first) + 1
    assert by_id["address:takahashi@third.co.jp"]["file"] == f"mail/archive.mbox#{offset}"
    assert by_id["address:ito@fourth.co.jp"]["file"] == "eml/one.eml"
    assert all(x["row"] is None and x["person_id"].startswith("P-") for x in lines)
