"""Raw messages → email activities: the CPython corpus, Japanese charsets, direction, threads."""

from __future__ import annotations

import base64
import email
import sysconfig
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.errors import BadRecord
from mappings.mail.message import message_id_of, message_text, parse_message
from mappings.mail.mime import decode_bytes, decode_words, html_to_text, snippet

STDLIB_TEST = Path(sysconfig.get_paths()["stdlib"]) / "test"
CORPUS = STDLIB_TEST / "test_email" / "data"
CJK = STDLIB_TEST / "cjkencodings"
OWN = ["ourco.co.jp"]

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="CPython test corpus not installed")


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def b_words(data: bytes, charset: str, chunk: int = 13) -> str:
    """Encoded-words split every ``chunk`` bytes — mid-character, as real mailers do."""
    return " ".join(
        f"=?{charset}?B?{base64.b64encode(data[i : i + chunk]).decode()}?="
        for i in range(0, len(data), chunk)
    )


def mime(
    body: bytes,
    *,
    charset: str = "utf-8",
    subject: str = "hello",
    frm: str = "Taro Sato <sato@client.co.jp>",
    to: str = "tanaka@ourco.co.jp",
    extra: str = "",
    cte: str = "8bit",
    ctype: str = "text/plain",
) -> bytes:
    if cte == "base64":
        body = base64.encodebytes(body)
    head = (
        f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "Date: Tue, 01 Oct 2024 10:00:00 +0900\r\n"
        f"{extra}MIME-Version: 1.0\r\n"
        f'Content-Type: {ctype}; charset="{charset}"\r\n'
        f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    )
    return head.encode("utf-8") + body


# -- the CPython corpus ---------------------------------------------------------------------


def test_every_corpus_message_maps_or_is_quarantined_with_a_reason() -> None:
    files = sorted(CORPUS.glob("msg_*.txt"))
    assert len(files) >= 47
    mapped, bad = {}, {}
    for f in files:
        try:
            mapped[f.name] = parse_message(f.read_bytes(), own_domains=["python.org"])
        except BadRecord as exc:
            assert exc.reason
            bad[f.name] = exc.reason
    assert len(mapped) + len(bad) == len(files)
    assert len(mapped) >= 25
    for act in mapped.values():
        assert act.kind == "email"
        assert act.occurred_at.tzinfo is not None
        assert act.key.startswith("mail:")
    # A multipart/digest without a Date or Received header: nothing to date it by.
    assert bad["msg_28.txt"].startswith("no usable date: no Date header")
    # A DSN bounce without a date is quarantined; one with a date maps as an automated report.
    assert bad["msg_05.txt"].startswith("no usable date")
    dsn = mapped["msg_25.txt"]
    assert dsn.attributes["report_type"] == "delivery-status"
    assert dsn.attributes["automated"] is True
    assert dsn.participants[0].email == "mailer-daemon@zinfandel.lacita.com"
    # Body text with no header block at all is not a message.
    assert bad["msg_19.txt"].startswith("no header fields")


def test_corpus_details() -> None:
    a = parse_message(corpus("msg_01.txt"), own_domains=["python.org"])
    assert a.key == "mail:15090.61304.110929.45684@aaa.zzz.org"
    assert a.occurred_at == datetime(2001, 5, 4, 18, 5, 44, tzinfo=UTC)
    assert a.subject == "This is a test message"
    assert a.direction == "inbound"
    assert [(p.email, p.name, p.role) for p in a.participants] == [
        ("bbb@ddd.com", "John X. Doe", "from"),
        ("bbb@zzz.org", None, "to"),
    ]
    # A forwarded/nested DSN: the report's own Message-ID is the key, its list is recorded.
    dsn = parse_message(corpus("msg_16.txt"), own_domains=[])
    assert dsn.attributes["list_id"] == "scr.socal-raves.org"
    assert dsn.attributes["has_attachments"] is True
    # An image attachment is seen and named.
    fish = parse_message(corpus("msg_07.txt"), own_domains=[])
    assert fish.attributes["attachments"] == ["dingusfish.gif"]
    assert fish.snippet == "Hi there, This is the dingus fish."
    # Broken structure is recorded, not fatal.
    broken = parse_message(corpus("msg_47.txt"), own_domains=[])
    assert "MissingHeaderBodySeparatorDefect" in broken.attributes["defects"]
    # Internal: from and to on the own domain.
    assert parse_message(corpus("msg_04.txt"), own_domains=["python.org"]).direction == "internal"


def test_compat32_and_default_policy_agree_on_the_corpus_but_default_garbles_cp932() -> None:
    """Why the mapping decodes headers itself: policy.default reads Shift_JIS as strict JIS."""
    for f in sorted(CORPUS.glob("msg_*.txt")):
        msg = email.message_from_bytes(f.read_bytes(), policy=policy.default)
        for h in ("subject", "from", "to", "date", "message-id"):
            msg.get(h)  # must not raise
    words = b_words("①～㈱".encode("cp932"), "shift_jis", chunk=64)
    raw = mime(b"x", subject=words)
    std = str(email.message_from_bytes(raw, policy=policy.default)["subject"])
    assert std != "①～㈱"
    assert parse_message(raw, own_domains=OWN).subject == "①～㈱"


# -- Japanese charsets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "label", "codec", "cte"),
    [
        ("shift_jis", "Shift_JIS", "cp932", "base64"),
        ("shift_jis", "x-sjis", "cp932", "8bit"),
        ("iso2022_jp", "ISO-2022-JP", "iso2022_jp", "7bit"),
        ("iso2022_jp", "iso-2022-jp", "iso2022_jp", "base64"),
        ("euc_jp", "EUC-JP", "euc_jp", "8bit"),
    ],
)
def test_cjkencodings_samples_decode_exactly(sample: str, label: str, codec: str, cte: str) -> None:
    body = (CJK / f"{sample}.txt").read_bytes()
    twin = (CJK / f"{sample}-utf8.txt").read_bytes().decode("utf-8")
    first_line = twin.splitlines()[0]
    raw = mime(
        body,
        charset=label,
        cte=cte,
        subject=b_words(first_line.encode(codec), label),
        frm=f"{b_words('佐藤 太郎'.encode(codec), label)} <sato@client.co.jp>",
    )
    assert message_text(raw) == twin
    act = parse_message(raw, own_domains=OWN)
    assert act.subject == first_line
    assert act.participants[0].name == "佐藤 太郎"
    assert act.snippet == " ".join(twin.split())[:240].rstrip()
    assert "charset_fallback" not in act.attributes


def test_shift_jis_label_with_cp932_only_characters() -> None:
    text = "①納期は～10月末、㈱髙﨑製作所様へ"
    raw = mime(
        text.encode("cp932"),
        charset="Shift_JIS",
        subject=b_words(text.encode("cp932"), "SJIS"),
        frm=f"{b_words('髙﨑'.encode('cp932'), 'shift-jis')} <t@client.co.jp>",
    )
    act = parse_message(raw, own_domains=OWN)
    assert act.subject == text
    assert act.snippet == text
    assert act.participants[0].name == "髙﨑"
    assert "charset_fallback" not in act.attributes


def test_iso2022jp_with_windows_row13_characters() -> None:
    """Outlook writes ① and ㈱ into ISO-2022-JP (CP50221): no standard codec decodes them."""
    jis = b"\x1b$B-!-j$*$h$S\x1b(B OK"  # ①㈱および OK
    assert decode_bytes(jis, "ISO-2022-JP") == ("①㈱および OK", None)
    raw = mime(
        jis,
        charset="ISO-2022-JP",
        cte="7bit",
        subject=f"=?ISO-2022-JP?B?{base64.b64encode(jis).decode()}?=",
    )
    act = parse_message(raw, own_domains=OWN)
    assert act.subject == "①㈱および OK"
    assert act.snippet == "①㈱および OK"


def test_half_width_katakana_in_iso2022jp() -> None:
    assert decode_bytes(b"\x1b(I12\x1b(B", "iso-2022-jp") == ("ｱｲ", None)


def test_unknown_charset_falls_back_and_says_so() -> None:
    raw = mime("テスト①です".encode("cp932"), charset="x-bogus-charset")
    act = parse_message(raw, own_domains=OWN)
    assert act.snippet == "テスト①です"
    assert act.attributes["charset_fallback"] == "x-bogus-charset→cp932"
    raw = mime("naïve café".encode(), charset="us-ascii")
    act = parse_message(raw, own_domains=OWN)
    assert act.snippet == "naïve café"
    assert act.attributes["charset_fallback"] == "us-ascii→utf-8"
    text, fb = decode_bytes(b"\x81\xff\xfe garbage", "utf-8")
    assert fb is not None and "replacements" in fb
    assert "garbage" in text


def test_raw_8bit_headers_in_utf8_and_cp932() -> None:
    raw_utf8 = "Subject: 見積のご依頼\r\nFrom: 佐藤 <sato@client.co.jp>\r\nDate: Tue, 01 Oct 2024 10:00:00 +0900\r\n\r\nbody".encode()
    act = parse_message(raw_utf8, own_domains=OWN)
    assert act.subject == "見積のご依頼"
    assert act.participants[0].name == "佐藤"
    assert "charset_fallback" not in act.attributes
    raw_sjis = "Subject: ①見積\r\nFrom: sato@client.co.jp\r\nDate: Tue, 01 Oct 2024 10:00:00 +0900\r\n\r\nbody".encode(
        "cp932"
    )
    act = parse_message(raw_sjis, own_domains=OWN)
    assert act.subject == "①見積"
    assert act.attributes["charset_fallback"] == "none→cp932"


def test_encoded_words_q_and_mixed() -> None:
    assert decode_words("=?utf-8?Q?caf=C3=A9_au_lait?= ok") == ("café au lait ok", None)
    # Words separated by whitespace join; text around them stays.
    text, _ = decode_words("Re: =?UTF-8?B?6KaL56mN?= =?UTF-8?B?5pu4?= (2)")
    assert text == "Re: 見積書 (2)"
    assert decode_words("=?utf-8?B?!!!?=")[0] == "=?utf-8?B?!!!?="


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
    assert "引用" not in html_to_text("<blockquote>引用</blockquote>")


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


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=64),
    st.one_of(
        st.none(),
        st.text(max_size=20),
        st.sampled_from(
            ["undefined", "unicode_escape", "rot13", "utf-16", "iso-2022-jp", "euc-jp"]
        ),
    ),
)
def test_decode_bytes_always_returns_text(data: bytes, label: str | None) -> None:
    text, fallback = decode_bytes(data, label)
    assert isinstance(text, str)
    assert fallback is None or len(fallback) < 120
    if label in ("undefined", "unicode_escape") and not data.isascii():
        assert fallback is not None  # never trusted, always a guess


def test_windows_extensions_in_euc_jp_and_mixed_charset_words() -> None:
    # CP51932: NEC row 13 (①) in EUC-JP, which the standard codec rejects.
    assert decode_bytes(b"\xad\xa1\xa4\xa2", "EUC-JP") == ("①あ", None)
    # A subject whose words are in two charsets (a reply prefix added by another mailer).
    sjis = base64.b64encode("見積①".encode("cp932")).decode()
    jis = base64.b64encode("見積".encode("iso2022_jp")).decode()
    text, fb = decode_words(f"=?UTF-8?B?UmU6IA==?= =?Shift_JIS?B?{sjis}?= =?ISO-2022-JP?B?{jis}?=")
    assert (text, fb) == ("Re: 見積①見積", None)


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


def test_latin1_labels_read_as_windows_1252_else_latin1() -> None:
    assert decode_bytes("“café” €".encode("cp1252"), "ISO-8859-1") == ("“café” €", None)
    assert decode_bytes(b"caf\xe9 \x81", "latin1") == ("café \x81", None)
