"""Building the wire form of an outbound mail: MIME parts, encoded headers, unsubscribe headers.

UTF-8 is the default. ISO-2022-JP is offered for Japanese recipients whose legacy clients
(older keitai and groupware) show UTF-8 as mojibake; the stdlib's ``iso2022_jp`` codec
rejects several characters Windows users type every day (～, −, —, ¢, half-width kana), so
those are first mapped to their JIS X 0208 twins, and a text that still cannot be encoded
falls back to UTF-8 (the caller is told, so the plan can show it).

Built with the compat32 ``email.mime`` classes on purpose: the modern policy re-folds
pre-encoded headers as UTF-8, which would undo the ISO-2022-JP encoded-words.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

SMTP_COMPAT = policy.compat32.clone(linesep="\r\n")

# Characters a Windows IME produces → the code point the iso2022_jp codec knows.
_JIS_TWINS = str.maketrans(
    {
        "\uff5e": "\u301c",  # FULLWIDTH TILDE → WAVE DASH
        "\u2014": "\u2015",  # EM DASH → HORIZONTAL BAR
        "\u2225": "\u2016",  # PARALLEL TO → DOUBLE VERTICAL LINE
        "\uff0d": "\u2212",  # FULLWIDTH HYPHEN-MINUS → MINUS SIGN
        "\uffe0": "\u00a2",
        "\uffe1": "\u00a3",
        "\uffe2": "\u00ac",
    }
)


def _full_width_kana(text: str) -> str:
    """Half-width katakana (not in ISO-2022-JP) → full width, leaving everything else."""
    out = []
    buf = ""
    for ch in text:
        if "\uff61" <= ch <= "\uff9f":
            buf += ch
            continue
        if buf:
            out.append(unicodedata.normalize("NFKC", buf))
            buf = ""
        out.append(ch)
    if buf:
        out.append(unicodedata.normalize("NFKC", buf))
    return "".join(out)


def for_iso2022jp(text: str) -> str | None:
    """The text made encodable as ISO-2022-JP, or None if it still is not."""
    fixed = _full_width_kana(text.translate(_JIS_TWINS))
    try:
        fixed.encode("iso2022_jp")
    except UnicodeEncodeError:
        return None
    return fixed


@dataclass(frozen=True)
class Content:
    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True)
class Envelope:
    sender: str
    """``Name <addr>``; the display name may be Japanese."""
    to_name: str | None
    to_address: str
    message_id: str
    date: datetime
    list_unsubscribe_mailto: str | None = None
    list_unsubscribe_url: str | None = None
    reply_to: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Composed:
    message: Message
    charset: str
    note: str | None = None
    """Set when ISO-2022-JP was asked for but the text needed UTF-8."""

    def as_bytes(self) -> bytes:
        """Wire form: CRLF line ends, as SMTP requires (smtplib sends bytes untouched)."""
        return self.message.as_bytes(policy=SMTP_COMPAT)


def _header(value: str, charset: str, name: str) -> str | Header:
    """A Header object, so the generator folds it knowing where the line starts."""
    if value.isascii():
        return value
    return Header(value, charset, header_name=name)


def _address(value: str, charset: str, header: str) -> str | Header:
    name, addr = parseaddr(value)
    return _named(name, addr, charset, header)


def _named(name: str | None, addr: str, charset: str, header: str) -> str | Header:
    if not name:
        return addr
    if name.isascii():
        return formataddr((name, addr))
    h = Header(header_name=header)
    h.append(name, charset)
    h.append(f"<{addr}>", "us-ascii")
    return h


def _set(msg: Message[Any, Any], name: str, value: str | Header) -> None:
    msg[name] = value


def compose(content: Content, env: Envelope, *, charset: str = "utf-8") -> Composed:
    """A complete message: text (and HTML) parts, encoded headers, List-Unsubscribe."""
    note = None
    subject, text, html = content.subject, content.text, content.html
    sender, to_name = env.sender, env.to_name
    if charset == "iso-2022-jp":
        parts = [for_iso2022jp(x) for x in (subject, text, sender, to_name or "")]
        if any(x is None for x in parts):
            charset, note = "utf-8", "ISO-2022-JP cannot carry some characters; sent as UTF-8"
        else:
            subject, text, sender, to_name = (x or "" for x in parts)
            to_name = to_name or None
    body_charset = charset
    plain = MIMEText(text, "plain", body_charset)
    msg: Message
    if html is not None:
        msg = MIMEMultipart("alternative")
        msg.attach(plain)
        # HTML always goes as UTF-8: every client that renders HTML reads it.
        msg.attach(MIMEText(html, "html", "utf-8"))
    else:
        msg = plain
    _set(msg, "Subject", _header(subject, charset, "Subject"))
    _set(msg, "From", _address(sender, charset, "From"))
    _set(msg, "To", _named(to_name, env.to_address, charset, "To"))
    _set(msg, "Date", format_datetime(env.date))
    _set(msg, "Message-ID", env.message_id)
    if env.reply_to:
        _set(msg, "Reply-To", _address(env.reply_to, charset, "Reply-To"))
    targets = []
    if env.list_unsubscribe_mailto:
        targets.append(f"<mailto:{env.list_unsubscribe_mailto}?subject=unsubscribe>")
    if env.list_unsubscribe_url:
        targets.append(f"<{env.list_unsubscribe_url}>")
    if targets:
        _set(msg, "List-Unsubscribe", ", ".join(targets))
    if env.list_unsubscribe_url and env.list_unsubscribe_url.startswith("https://"):
        # RFC 8058 one-click applies to an HTTPS target only.
        _set(msg, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    for k, v in env.extra_headers.items():
        _set(msg, k, _header(v, charset, k))
    return Composed(msg, charset, note)
