"""What a message is (kind, timeline) and the work limits on one message (issue 16)."""

from __future__ import annotations

import time

import pytest

from kizuna.errors import BadRecord
from mappings.mail.message import MailLimits, parse_message

HEAD = (
    "From: sato@client.co.jp\r\nTo: tanaka@ourco.co.jp\r\nDate: Tue, 01 Oct 2024 10:00:00 +0900\r\n"
)


def _parse(raw: str | bytes, **limits: int) -> object:
    data = raw.encode() if isinstance(raw, str) else raw
    return parse_message(data, own_domains=["ourco.co.jp"], limits=MailLimits(**limits))


@pytest.mark.parametrize(
    ("extra", "kind", "timeline"),
    [
        ("Subject: 見積\r\n", "email", True),
        ("Subject: Re: 見積\r\nX-Autoreply: yes\r\n", "auto_reply", False),
        ("Subject: Automatic reply: 見積\r\n", "auto_reply", False),
        ("Subject: 不在\r\nAuto-Submitted: auto-replied (vacation)\r\n", "auto_reply", False),
        ("Subject: Auto: my car\r\n", "email", True),
        ("Subject: report\r\nAuto-Submitted: no\r\n", "email", True),
    ],
)
def test_kind_and_timeline(extra: str, kind: str, timeline: bool) -> None:
    act = _parse(HEAD + extra + "Message-ID: <k@x>\r\n\r\nbody\r\n")
    assert (act.kind, act.timeline) == (kind, timeline)  # type: ignore[attr-defined]


def test_full_text_is_kept_and_capped() -> None:
    body = "\r\n".join(f"行{i} お見積りの詳細です。" for i in range(3000))
    act = _parse(HEAD + "Subject: 長文\r\nMessage-ID: <long@x>\r\n\r\n" + body, max_text_chars=5000)
    assert len(act.body) == 5000 and act.body.startswith("行0")  # type: ignore[attr-defined]
    assert len(act.snippet) <= 240  # type: ignore[attr-defined]
    whole = _parse(HEAD + "Subject: 長文\r\nMessage-ID: <long@x>\r\n\r\n" + body)
    assert "行2999" in whole.body  # type: ignore[attr-defined]


def test_a_huge_to_header_is_refused_fast() -> None:
    to = ", ".join(f"user{i}@example.co.jp" for i in range(200_000))  # ~4.6 MB
    started = time.monotonic()
    with pytest.raises(BadRecord, match="recipients"):
        _parse(f"From: a@b.jp\r\nTo: {to}\r\nDate: Tue, 01 Oct 2024 10:00:00 +0900\r\n\r\nx\r\n")
    assert time.monotonic() - started < 10
    with pytest.raises(BadRecord, match="more than 10 recipients"):
        _parse(
            HEAD + "Cc: " + ", ".join(f"u{i}@c.jp" for i in range(20)) + "\r\n\r\nx",
            max_recipients=10,
        )


def test_mime_depth_and_part_count_are_bounded() -> None:
    body = "Content-Type: text/plain\r\n\r\nleaf\r\n"
    for i in range(200):
        body = f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n{body}\r\n--b{i}--\r\n'
    started = time.monotonic()
    with pytest.raises(BadRecord, match="nested deeper than 20"):
        _parse(HEAD + "MIME-Version: 1.0\r\n" + body)
    parts = "".join(f"--B\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(2000))
    with pytest.raises(BadRecord, match="more than 500 MIME parts"):
        _parse(
            HEAD
            + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
            + parts
            + "--B--\r\n"
        )
    assert time.monotonic() - started < 10


def test_an_empty_subject_stays_empty() -> None:
    assert _parse(HEAD + "Subject: \r\nMessage-ID: <e@x>\r\n\r\nx").subject == ""  # type: ignore[attr-defined]
    assert _parse(HEAD + "Message-ID: <n@x>\r\n\r\nx").subject is None  # type: ignore[attr-defined]
