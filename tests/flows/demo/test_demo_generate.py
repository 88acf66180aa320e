"""``flows.demo.generate.generate``: the sample workspace's files look like real exports and are
deterministic for a seed."""

from __future__ import annotations

import csv
import io
import mailbox
from collections import Counter
from datetime import date
from email.header import decode_header
from pathlib import Path

import icalendar
import pytest
from openpyxl import load_workbook

from flows import config
from flows.demo.exports import CSV_HEADERS, DEAL_HEADERS
from flows.demo.generate import generate, generate_with_counts
from flows.demo.world import OWN_DOMAIN, STAGES, half_width

TODAY = date(2026, 11, 27)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    ws_file = generate(root, messages=300, seed=11, today=TODAY)
    assert ws_file == root / "kizuna.yaml"
    return root


def test_workspace_file_loads_with_every_source(demo: Path) -> None:
    ws = config.load(demo / "kizuna.yaml")
    assert ws.company.domains == [OWN_DOMAIN]
    assert ws.company.time_zone == "Asia/Tokyo"
    assert {n: s["type"] for n, s in ws.sources.items()} == {
        "customers": "spreadsheet",
        "deals": "spreadsheet",
        "mail": "mail",
        "calendar": "ics",
        "deal_lines": "spreadsheet",
    }
    assert ws.sources["customers"]["key"] == "顧客ID"
    assert ws.sources["calendar"]["expand_past_days"] == 180
    text = (demo / "kizuna.yaml").read_text(encoding="utf-8")
    assert text.count("\n#") + text.count("  #") > 10  # a commented file, not a bare dump


def test_customer_csv_is_cp932_with_crlf_and_bad_rows(demo: Path) -> None:
    raw = (demo / "data" / "customers.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("cp932")  # strict: every byte is cp932
    assert text.count("\r\n") == text.count("\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == CSV_HEADERS
    body = rows[1:]
    assert 1450 <= len(body) <= 1560
    companies = {r[1] for r in body}
    assert len(companies) >= 300  # 300 companies, several spelled more than one way
    assert any(c.startswith("株式会社") for c in companies)
    assert any(c.startswith(("(株)", "㈱", "（株）")) for c in companies)
    assert any(c.endswith("株式会社") for c in companies)
    assert any(c.startswith("有限会社") or c.startswith("(有)") for c in companies)
    assert any(c.endswith(("Co., Ltd.", "Inc.", "Co.,Ltd.")) for c in companies)
    assert any(any("ｦ" <= ch <= "ﾟ" for ch in c) for c in companies)  # half-width kana
    # Kana readings are katakana and line up with the kanji names.
    kana = [r[3] for r in body if r[3]]
    assert len(kana) > 1000 and all(not ch.isascii() for k in kana for ch in k.replace(" ", ""))
    ids = Counter(r[0] for r in body)
    assert [i for i, n in ids.items() if n > 1] != []  # a duplicate 顧客ID
    assert "" in ids  # a row without one
    assert any("@@" in r[4] or r[4].endswith("＠") for r in body)
    assert any(r[10] == "2026/13/45" for r in body)
    assert any(";" in r[4] for r in body)  # a contact listed with a second address
    assert {r[9].split("@")[1] for r in body} == {OWN_DOMAIN}


def test_deals_workbook(demo: Path) -> None:
    wb = load_workbook(demo / "data" / "deals.xlsx")
    ws = wb.active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert tuple(rows[0]) == DEAL_HEADERS
    deals = rows[1:]
    assert len(deals) == 400
    assert {d[4] for d in deals} == set(STAGES)
    amounts = [d[5] for d in deals]
    assert any(isinstance(a, int) for a in amounts)
    assert any(isinstance(a, str) and a.startswith("¥") and "," in a for a in amounts)
    assert len({d[0] for d in deals}) == 400


def _header(msg: mailbox.mboxMessage, name: str) -> str:
    out = []
    for part, cs in decode_header(msg[name] or ""):
        if isinstance(part, bytes):
            codec = {"shift_jis": "cp932", "iso-2022-jp": "iso2022_jp"}.get((cs or "").lower(), cs)
            out.append(part.decode(codec or "ascii"))
        else:
            out.append(part)
    return "".join(out)


def test_mailboxes_hold_threads_in_japanese_encodings(demo: Path) -> None:
    msgs = [
        m
        for name in ("inbox.mbox", "sent.mbox")
        for m in mailbox.mbox(demo / "data" / "mail" / name)
    ]
    ids = {m["Message-ID"] for m in msgs if m["Message-ID"]}
    assert 295 <= len(ids) <= 300  # 300 asked, two of them malformed (one has no headers)
    charsets = Counter(
        (part.get_content_charset() or "").lower()
        for m in msgs
        for part in m.walk()
        if not part.is_multipart()
    )
    assert {"iso-2022-jp", "shift_jis", "utf-8"} <= set(charsets)
    transfer = Counter((m.get("Content-Transfer-Encoding") or "").lower() for m in msgs)
    assert {"7bit", "base64", "quoted-printable"} <= set(transfer)
    # Shift_JIS-labelled mail carrying cp932-only characters, as Windows mailers send it.
    sjis_bodies = [
        part.get_payload(decode=True)
        for m in msgs
        for part in m.walk()
        if (part.get_content_charset() or "").lower() == "shift_jis"
    ]
    cp932_only = [b for b in sjis_bodies if isinstance(b, bytes) and "①" in b.decode("cp932")]
    assert cp932_only
    with pytest.raises(UnicodeDecodeError):
        cp932_only[0].decode("shift_jis")
    # Replies point at messages that exist.
    replies = [m for m in msgs if m["In-Reply-To"]]
    assert len(replies) > 50
    assert all(m["In-Reply-To"] in ids for m in replies)
    assert all(m["In-Reply-To"] in (m["References"] or "") for m in replies)
    subjects = [_header(m, "Subject") for m in msgs if m["Message-ID"]]
    assert any(s.startswith(("Re: ", "RE: ")) for s in subjects)
    assert sum(1 for s in subjects if not s.isascii()) > 200
    senders = {_header(m, "From").rsplit("<", 1)[-1].rstrip(">") for m in msgs}
    assert any(
        s.endswith(("@gmail.com", "@yahoo.co.jp", "@icloud.com", "@outlook.jp")) for s in senders
    )
    assert any(s.endswith("@" + OWN_DOMAIN) for s in senders)


def test_calendars_have_recurring_meetings_across_zones(demo: Path) -> None:
    files = sorted((demo / "data" / "calendars").glob("*.ics"))
    assert len(files) == 10
    uids: Counter[str] = Counter()
    tzids: set[str] = set()
    statuses: set[str] = set()
    sequences: set[int] = set()
    rrules = 0
    attendees = 0
    for f in files:
        cal = icalendar.Calendar.from_ical(f.read_bytes())
        tzids |= {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")}
        for ev in cal.walk("VEVENT"):
            if "RECURRENCE-ID" not in ev:
                uids[str(ev["UID"])] += 1
            rrules += "RRULE" in ev
            statuses.add(str(ev.get("STATUS", "")))
            sequences.add(int(ev.get("SEQUENCE", 0)))
            a = ev.get("ATTENDEE")
            attendees += len(a) if isinstance(a, list) else int(a is not None)
    assert {"Asia/Tokyo", "America/Los_Angeles", "Europe/London"} <= tzids
    assert "CANCELLED" in statuses and 1 in sequences
    assert rrules >= 3
    assert max(uids.values()) == 10  # the weekly meeting is in every rep's calendar
    assert 150 <= len(uids) <= 250 and attendees > 200


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", messages=120, seed=3, today=TODAY).parent
    b = generate(tmp_path / "b", messages=120, seed=3, today=TODAY).parent
    c = generate(tmp_path / "c", messages=120, seed=4, today=TODAY).parent
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 1 + 2 + 2 + 10 + 1  # + deal_lines.csv
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "data" / "customers.csv").read_bytes() != (
        c / "data" / "customers.csv"
    ).read_bytes()


def test_message_count_follows_the_request(tmp_path: Path) -> None:
    _, counts = generate_with_counts(tmp_path, messages=1000, seed=5, today=TODAY)
    assert counts.messages == 1000 and counts.messages_bad == 2
    msgs = [
        m
        for name in ("inbox.mbox", "sent.mbox")
        for m in mailbox.mbox(tmp_path / "data" / "mail" / name)
    ]
    assert len({m["Message-ID"] for m in msgs if m["Message-ID"]}) == 999  # one has no headers


def test_half_width_keeps_voiced_marks() -> None:
    assert half_width("サンライズ") == "ｻﾝﾗｲｽﾞ"
    assert half_width("ＡＢＣパワー") == "ABCﾊﾟﾜｰ"
