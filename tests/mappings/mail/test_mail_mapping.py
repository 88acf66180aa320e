"""Raw messages → email activities, as records: direction, participants, threads, bodies, ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.errors import BadRecord
from mappings.mail.message import message_id_of, parse_message
from mappings.mail.mime import html_to_text, snippet
from tests.support.raw_mail import CORPUS, OWN, corpus, mime

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="CPython test corpus not installed")


# -- direction, participants, threads --------------------------------------------------------


def test_direction_and_internal_flags() -> None:
    inbound = parse_message(mime(b"x"), own_domains=OWN)
    assert inbound.direction == "inbound"
    assert [p.internal for p in inbound.participants] == [False, True]
    outbound = parse_message(
        mime(
            b"x",
            frm="田中 <Tanaka@OurCo.co.jp>",
            to="sato@client.co.jp",
            extra="Cc: boss@sales.ourco.co.jp\r\n",
        ),
        own_domains=OWN,
    )
    assert outbound.direction == "outbound"
    assert [(p.email, p.role, p.internal) for p in outbound.participants] == [
        ("tanaka@ourco.co.jp", "from", True),
        ("sato@client.co.jp", "to", False),
        ("boss@sales.ourco.co.jp", "cc", True),
    ]
    internal = parse_message(
        mime(b"x", frm="a@ourco.co.jp", to="b@ourco.co.jp", extra="Bcc: c@ourco.co.jp\r\n"),
        own_domains=["@OURCO.CO.JP"],
    )
    assert internal.direction == "internal"
    assert {p.role for p in internal.participants} == {"from", "to", "bcc"}
    assert all(p.internal for p in internal.participants)


def test_group_syntax_and_junk_addresses_are_skipped() -> None:
    act = parse_message(
        mime(
            b"x", to="undisclosed-recipients:;", extra="Cc: not-an-address, <x@y.example.org>\r\n"
        ),
        own_domains=OWN,
    )
    assert [(p.email, p.role) for p in act.participants] == [
        ("sato@client.co.jp", "from"),
        ("x@y.example.org", "cc"),
    ]


def test_thread_keys_across_a_reply_chain() -> None:
    root = parse_message(
        mime(b"first", extra="Message-ID: <Root@Client.co.jp>\r\n"), own_domains=OWN
    )
    reply = parse_message(
        mime(
            b"second",
            extra="Message-ID: <r1@ourco.co.jp>\r\nIn-Reply-To: <root@client.co.jp>\r\n",
        ),
        own_domains=OWN,
    )
    reply2 = parse_message(
        mime(
            b"third",
            extra=(
                "Message-ID: <r2@client.co.jp>\r\nIn-Reply-To: <r1@ourco.co.jp>\r\n"
                "References: <ROOT@client.co.jp>\r\n <r1@ourco.co.jp>\r\n"
            ),
        ),
        own_domains=OWN,
    )
    assert root.key == "mail:root@client.co.jp"
    assert root.thread_key == root.key
    assert reply.thread_key == root.key
    assert reply.attributes["in_reply_to"] == "root@client.co.jp"
    assert reply2.thread_key == root.key


def test_missing_message_id_gets_a_deterministic_fallback() -> None:
    a = parse_message(mime(b"body\r\n"), own_domains=OWN)
    b = parse_message(mime(b"body\r\n").replace(b"\r\n", b"\n") + b"\n\n", own_domains=OWN)
    c = parse_message(mime(b"other body"), own_domains=OWN)
    h = parse_message(mime(b"body\r\n"), own_domains=OWN, headers_only=True)
    assert a.key.startswith("mail:nomid:")
    assert a.key == b.key == h.key
    assert a.key != c.key


def test_date_fallbacks() -> None:
    base = mime(b"x")
    no_date = base.replace(b"Date: Tue, 01 Oct 2024 10:00:00 +0900\r\n", b"")
    with pytest.raises(BadRecord, match="no usable date: no Date header"):
        parse_message(no_date, own_domains=OWN)
    received = (
        b"Received: from mx1 by mx2; Wed, 02 Oct 2024 12:00:00 +0000\r\n"
        b"Received: from client by mx1;\r\n Tue, 01 Oct 2024 09:00:00 +0900\r\n"
    )
    act = parse_message(received + no_date, own_domains=OWN)
    assert act.occurred_at == datetime(2024, 10, 1, 0, 0, tzinfo=UTC)
    bad_date = base.replace(b"Tue, 01 Oct 2024 10:00:00 +0900", b"someday soon")
    with pytest.raises(BadRecord, match="invalid Date 'someday soon'"):
        parse_message(bad_date, own_domains=OWN)
    minus_zero = base.replace(b"+0900", b"-0000")
    assert parse_message(minus_zero, own_domains=OWN).occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "empty message"),
        (b"   \r\n", "empty message"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "no header fields"),
    ],
)
def test_unparseable_input_is_a_bad_record(raw: bytes, why: str) -> None:
    with pytest.raises(BadRecord, match=why):
        parse_message(raw, own_domains=OWN)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    try:
        parse_message(b"Date: Tue, 01 Oct 2024 10:00:00 +0900\r\nFrom: " + raw, own_domains=OWN)
        parse_message(raw, own_domains=OWN)
    except BadRecord:
        pass


# -- bodies, snippets, ids ---------------------------------------------------------------


def test_html_only_mail_becomes_text() -> None:
    html = (
        "<html><head><style>p{color:red}</style><title>t</title></head><body>"
        "<p>いつもお世話になっております。</p><p>ご確認&amp;ご返信ください</p>"
        "<blockquote>古い引用</blockquote><script>alert(1)</script></body></html>"
    )
    raw = mime(html.encode("cp932"), charset="shift_jis", ctype="text/html")
    act = parse_message(raw, own_domains=OWN)
    assert act.snippet == "いつもお世話になっております。 ご確認&ご返信ください"
    assert "> 古い引用" in (act.body or "") and "alert" not in (act.body or "")
    assert html_to_text("<p>新</p><blockquote>引用<blockquote>前</blockquote></blockquote>") == (
        "新\n\n> 引用\n> > 前"
    )


def test_html_to_text_is_bounded_on_hostile_html() -> None:
    """Nesting past libxml2's limits, a flood of tiny elements and of quotes: text comes back,
    in about a second each (inscriptis lays out; the fallback strips tags)."""
    deep = "<div>" * 100_000 + "深い &amp; 本文" + "</div>" * 100_000
    assert html_to_text(deep).strip() == "深い & 本文"
    quotes = "<blockquote>q" * 20_000
    assert html_to_text(quotes).count("q") == 20_000
    big = "<p>" + "あ" * 3_000_000 + "</p>"
    assert len(html_to_text(big).strip()) == 2_000_000 - len("<p>")


def test_snippet_trims_quotes_and_signatures() -> None:
    body = (
        "Thanks, the quote looks fine.\n\n"
        "On Tue, Oct 1, 2024 at 10:00 Taro <sato@client.co.jp> wrote:\n"
        "> old text\n"
    )
    assert snippet(body) == "Thanks, the quote looks fine."
    jp = "承知しました。\n\n--\n株式会社アワコ 田中\n"
    assert snippet(jp) == "承知しました。"
    gmail_jp = "了解です。\n2024年10月1日(火) 10:00 佐藤 <sato@client.co.jp>:\n> 以前"
    assert snippet(gmail_jp) == "了解です。"
    iphone_jp = (
        "了解です。\n\n2026/10/27 05:06、吉田 桃子 <m.yoshida@ourco.co.jp> のメール:\n\n> 前"
    )
    assert snippet(iphone_jp) == "了解です。"
    outlook = "Fine.\n-----Original Message-----\nFrom: x"
    assert snippet(outlook) == "Fine."
    assert len(snippet("あ" * 1000) or "") == 240


def test_headers_only_keeps_identity_and_drops_body() -> None:
    raw = mime(b"secret body", extra="Message-ID: <h@x.example.org>\r\n")
    full = parse_message(raw, own_domains=OWN)
    head = parse_message(raw, own_domains=OWN, headers_only=True)
    assert head.key == full.key
    assert head.snippet is None
    assert "has_attachments" not in head.attributes
    assert head.participants == full.participants


def test_message_id_of() -> None:
    assert message_id_of(b"Subject: x\r\nMessage-Id:\r\n <ABC@Ex.com>\r\n\r\nbody") == "abc@ex.com"
    assert message_id_of(b"Subject: x\r\n\r\nMessage-ID: <in@body>\r\n") is None
    assert message_id_of(b"Message-ID: <>\r\n\r\n") is None
    assert message_id_of(corpus("msg_01.txt")) == "15090.61304.110929.45684@aaa.zzz.org"
    long_id = "<" + "a" * 600 + "@x>"
    got = message_id_of(f"Message-ID: {long_id}\r\n\r\n".encode())
    assert got is not None and got.startswith("h:") and len(got) < 100


def test_jst_zone_name_is_not_read_as_utc() -> None:
    raw = mime(b"x").replace(b"+0900", b"JST")
    assert parse_message(raw, own_domains=OWN).occurred_at == datetime(
        2024, 10, 1, 1, 0, tzinfo=UTC
    )
    commented = mime(b"x").replace(b"+0900", b"+0900 (JST)")
    assert parse_message(commented, own_domains=OWN).occurred_at == datetime(
        2024, 10, 1, 1, 0, tzinfo=UTC
    )


def test_regressions_found_by_fuzzing() -> None:
    # get_payload() on a leaf with an RFC 2231 charset raised TypeError (tuple encoding).
    raw = mime("本文".encode(), ctype="multipart/mixed; boundary=B").replace(
        b"\r\n\r\n",
        b"\r\n\r\n--B\r\nContent-Type: text/plain; charset*=utf-8''utf-8\r\n\r\n"
        + "本文\udcff".encode("utf-8", "surrogateescape")
        + b"\r\n--B--\r\n",
        1,
    )
    assert parse_message(raw, own_domains=OWN).snippet is not None
    # An 8-bit Content-Disposition came back as a Header object (no .split).
    part = b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\x8c\xa9.pdf\r\n\r\nx"
    raw = mime(b"", ctype="multipart/mixed; boundary=B").replace(
        b"\r\n\r\n", b"\r\n\r\n--B\r\n" + part + b"\r\n--B--\r\n", 1
    )
    assert parse_message(raw, own_domains=OWN).attributes["has_attachments"] is True
    # "a@b." normalises to "a@b", which is not an address: skipped, not a crash.
    act = parse_message(mime(b"x", to="x@nodot., ok@client.co.jp"), own_domains=OWN)
    assert [p.email for p in act.participants] == ["sato@client.co.jp", "ok@client.co.jp"]


def test_calendar_invitation_is_flagged_not_used_as_snippet() -> None:
    ics = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    raw = mime(b"", ctype="multipart/mixed; boundary=B").replace(
        b"\r\n\r\n",
        b"\r\n\r\n--B\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n"
        + ics
        + b"\r\n--B--\r\n",
        1,
    )
    act = parse_message(raw, own_domains=OWN)
    assert act.attributes["calendar_invite"] is True
    assert act.snippet is None


def test_an_idn_own_domain_makes_its_addresses_internal_in_either_spelling() -> None:
    """Own domains are compared in A-label form, as addresses are stored (issue 16)."""
    raw = (
        "From: 佐藤 <sato@例え.jp>\r\nTo: x@client.jp, y@XN--R8JZ45G.jp\r\n"
        "Date: Tue, 01 Oct 2024 10:00:00 +0900\r\nMessage-ID: <idn-own@x>\r\n\r\nb\r\n"
    ).encode()
    for own in (["例え.jp"], ["xn--r8jz45g.jp"]):
        act = parse_message(raw, own_domains=own)
        assert act.direction == "outbound"
        assert [(p.email, p.internal) for p in act.participants] == [
            ("sato@xn--r8jz45g.jp", True),
            ("x@client.jp", False),
            ("y@xn--r8jz45g.jp", True),
        ]
