"""Raw messages → email activities, as text: the CPython corpus, Japanese charsets, decoding."""

from __future__ import annotations

import base64
import email
from datetime import UTC, datetime
from email import policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.errors import BadRecord
from mappings.mail.message import message_text, parse_message
from mappings.mail.mime import decode_bytes, decode_words
from tests.support.raw_mail import CORPUS, OWN, STDLIB_TEST, b_words, corpus, mime

CJK = STDLIB_TEST / "cjkencodings"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="CPython test corpus not installed")


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
        assert act.kind in ("email", "bounce", "auto_reply", "invitation", "forward")
        assert act.occurred_at.tzinfo is not None
        assert act.key.startswith("mail:")
    # A multipart/digest without a Date or Received header: nothing to date it by.
    assert bad["msg_28.txt"].startswith("no usable date: no Date header")
    # A DSN bounce without a date is quarantined; one with a date maps as an automated report.
    assert bad["msg_05.txt"].startswith("no usable date")
    dsn = mapped["msg_25.txt"]
    assert dsn.attributes["report_type"] == "delivery-status"
    assert (dsn.kind, dsn.timeline) == ("bounce", False)
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


# -- decoding ----------------------------------------------------------------------------


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


def test_latin1_labels_read_as_windows_1252_else_latin1() -> None:
    assert decode_bytes("“café” €".encode("cp1252"), "ISO-8859-1") == ("“café” €", None)
    assert decode_bytes(b"caf\xe9 \x81", "latin1") == ("café \x81", None)
