"""Raw mail for the mail mapping tests: RFC 5322 bytes built to order, and the CPython corpus.

Its own module because two test files build the same messages (``test_mail_charsets`` reads
them as text, ``test_mail_mapping`` as records) and neither should import the other.
"""

from __future__ import annotations

import base64
import sysconfig
from pathlib import Path

STDLIB_TEST = Path(sysconfig.get_paths()["stdlib"]) / "test"
CORPUS = STDLIB_TEST / "test_email" / "data"
OWN = ["ourco.co.jp"]


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
