"""Decoding the parts of a mail the stdlib gets wrong for Japanese mail.

The ``email`` package decodes a ``Shift_JIS`` label with the strict JIS codec (so ①, ～ and
㈱, which every Windows mailer sends under that label, become garbage), cannot decode the
Windows flavour of ISO-2022-JP (NEC row 13 and IBM extension characters), and falls back to
surrogates for 8-bit headers. These helpers take bytes and a charset label and always return
text, saying when they had to guess, so the mapping can record it instead of silently
storing mojibake. Pure functions, no I/O: connectors (IMAP, Gmail, Graph) reuse them.
"""

from __future__ import annotations

import binascii
import codecs
import hashlib
import re

from mappings.mail.mime_jp import decode_eucjp, decode_iso2022jp
from mappings.mail.text import SNIPPET_CHARS, html_to_text, snippet

__all__ = [
    "SNIPPET_CHARS",
    "decode_bytes",
    "decode_header",
    "decode_words",
    "html_to_text",
    "message_id_of",
    "message_ids",
    "normalize_message_id",
    "raw_header_text",
    "resolve_charset",
    "snippet",
    "split_raw",
]

# Labels → the codec that decodes what senders actually put under them.
_ALIASES: dict[str, str] = {
    # Shift_JIS as Windows writes it (cp932 is a superset: NEC/IBM extensions, ～ as U+FF5E).
    **dict.fromkeys(
        (
            "shift_jis",
            "shift-jis",
            "shiftjis",
            "sjis",
            "s-jis",
            "s_jis",
            "x-sjis",
            "x-shift-jis",
            "x-shift_jis",
            "ms_kanji",
            "ms-kanji",
            "csshiftjis",
            "windows-31j",
            "cswindows31j",
            "cp932",
            "ms932",
            "x-ms-cp932",
            "ibm-943",
        ),
        "cp932",
    ),
    **dict.fromkeys(
        (
            "iso-2022-jp",
            "iso2022-jp",
            "iso2022jp",
            "iso_2022_jp",
            "csiso2022jp",
            "iso-2022-jp-1",
            "iso-2022-jp-2",
            "iso-2022-jp-3",
            "iso-2022-jp-ms",
            "cp50220",
            "cp50221",
            "cp50222",
            "x-iso-2022-jp",
        ),
        "iso2022_jp",
    ),
    **dict.fromkeys(
        ("euc-jp", "euc_jp", "eucjp", "x-euc-jp", "x-euc", "cseucpkdfmtjapanese", "cp51932"),
        "euc_jp",
    ),
    # Windows-1252 is what "Latin-1" mail really contains (curly quotes, €).
    **dict.fromkeys(("iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1"), "cp1252"),
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "cp936", "euc-cn"), "gb18030"),
    **dict.fromkeys(("euc-kr", "ks_c_5601-1987", "ks_c_5601", "x-windows-949"), "cp949"),
    **dict.fromkeys(("utf8", "utf-8", "x-utf-8", "unicode-1-1-utf-8"), "utf-8"),
    **dict.fromkeys(("us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "csascii"), "ascii"),
}
# Labels that say "I do not know": go straight to guessing.
_UNKNOWN = frozenset({"", "unknown-8bit", "x-unknown", "unknown", "8bit", "default", "none"})
_GUESSES = ("utf-8", "cp932")
# Python-internal codecs that no mail program means, whatever a header claims.
_NOT_MAIL = frozenset(
    {"undefined", "unicode_escape", "raw_unicode_escape", "idna", "punycode", "mbcs", "oem"}
)


def resolve_charset(label: str | None) -> str | None:
    """The codec to use for a charset label, or None when the label names no known codec."""
    if label is None:
        return None
    name = label.strip().strip("\"'").lower()
    name = name.split("*", 1)[0]  # RFC 2231 language suffix: us-ascii*en
    if name in _UNKNOWN:
        return None
    if name in _ALIASES:
        return _ALIASES[name]
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return None
    if codec.replace("-", "_") in _NOT_MAIL:
        return None
    # codecs.lookup maps shift_jis to the strict JIS codec; keep the Windows superset.
    return _ALIASES.get(codec, codec)


def decode_bytes(data: bytes, label: str | None) -> tuple[str, str | None]:
    """Decode ``data`` labelled ``label``; returns (text, fallback) where fallback is None
    when the label decoded cleanly and otherwise says what was used instead (``"x-bogus→utf-8"``).
    """
    codec = resolve_charset(label)
    if codec is None and data.isascii() and b"\x1b" not in data:
        return data.decode("ascii"), None
    if codec is not None:
        text = _strict(data, codec)
        if text is not None:
            return text, None
    shown = ((label or "none").strip().lower() or "none")[:40]
    if b"\x1b$" in data or b"\x1b(" in data:
        text = _strict(data, "iso2022_jp")
        if text is not None:
            return text, f"{shown}→iso-2022-jp"
    for guess in _GUESSES:
        if guess == codec:
            continue
        text = _strict(data, guess)
        if text is not None:
            return text, f"{shown}→{guess}"
    if codec is not None:
        return _lenient(data, codec), f"{shown}→{codec} with replacements"
    return data.decode("latin-1", "replace"), f"{shown}→latin-1"


def _strict(data: bytes, codec: str) -> str | None:
    try:
        if codec == "iso2022_jp":
            return decode_iso2022jp(data)
        if codec == "euc_jp":
            return decode_eucjp(data)
        if codec == "cp1252":  # read Latin-1 labels as Windows-1252, exactly Latin-1 if not
            try:
                return data.decode("cp1252")
            except UnicodeDecodeError:
                return data.decode("latin-1")
        return data.decode(codec)
    except (UnicodeError, LookupError, ValueError, TypeError):
        return None


def _lenient(data: bytes, codec: str) -> str:
    if codec in ("iso2022_jp", "euc_jp"):
        codec = "iso2022_jp_ext" if codec == "iso2022_jp" else "euc_jp"
    try:
        return data.decode(codec, "replace")
    except (UnicodeError, LookupError, ValueError, TypeError):
        return data.decode("latin-1", "replace")


# -- headers -----------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_BLANK_BETWEEN_WORDS = re.compile(r"[ \t\r\n]+")
_B64 = re.compile(r"[A-Za-z0-9+/]*")


def header_bytes(value: str) -> bytes:
    """The bytes of a header value as the parser stored them (8-bit kept as surrogates)."""
    return value.encode("ascii", "surrogateescape")


def raw_header_text(value: str) -> tuple[str, str | None]:
    """Unfolded header text with raw 8-bit bytes decoded (utf-8, then cp932, ...)."""
    value = _FOLD.sub("", value)
    try:
        value.encode("ascii")
        if "\x1b" not in value:
            return value, None
    except UnicodeEncodeError:
        pass
    data = header_bytes(value) if _has_surrogates(value) else value.encode("utf-8", "replace")
    text, fallback = decode_bytes(data, None)
    # 8-bit UTF-8 headers are allowed (RFC 6532): not a fallback worth recording.
    if fallback is not None and fallback.endswith("→utf-8"):
        fallback = None
    return text, fallback


def _has_surrogates(s: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in s)


def decode_words(text: str) -> tuple[str, str | None]:
    """Decode RFC 2047 encoded-words, leniently (mid-word, in quotes, split characters).

    Adjacent words in one charset are joined before decoding, because Japanese mailers split
    multi-byte characters (and ISO-2022-JP escape runs) across words.
    """
    if "=?" not in text:
        return text, None
    parts: list[tuple[str | None, bytes | str]] = []  # (charset, bytes) or (None, text)
    pos = 0
    for m in _ENCODED_WORD.finditer(text):
        between = text[pos : m.start()]
        if between and not (parts and parts[-1][0] is not None and not between.strip()):
            parts.append((None, between))
        payload = _word_payload(m.group(2), m.group(3))
        if payload is None:
            parts.append((None, m.group(0)))
        else:
            charset = m.group(1).split("*", 1)[0].lower()
            prev = parts[-1] if parts else None
            if prev is not None and prev[0] == charset and isinstance(prev[1], bytes):
                parts[-1] = (charset, prev[1] + payload)
            else:
                parts.append((charset, payload))
        pos = m.end()
    if pos < len(text):
        parts.append((None, text[pos:]))
    out: list[str] = []
    fallback: str | None = None
    for charset, chunk in parts:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        decoded, fb = decode_bytes(chunk, charset)
        fallback = fallback or fb
        out.append(decoded)
    return "".join(out), fallback


def _word_payload(kind: str, data: str) -> bytes | None:
    try:
        if kind in "bB":
            data = data.rstrip("=")
            if not _B64.fullmatch(data):
                return None
            return binascii.a2b_base64(data + "=" * (-len(data) % 4))
        return binascii.a2b_qp(data.encode("ascii"), header=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def decode_header(value: str | None) -> tuple[str | None, str | None]:
    """A whole unstructured header (Subject): raw 8-bit and encoded-words decoded, unfolded."""
    if value is None:
        return None, None
    text, fb1 = raw_header_text(value)
    text, fb2 = decode_words(text)
    text = _BLANK_BETWEEN_WORDS.sub(" ", text).strip()
    return text, fb1 or fb2


# -- Message-IDs -------------------------------------------------------------------------

_ANGLE = re.compile(r"<([^<>]*)>")
_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
MAX_ID = 400


def normalize_message_id(value: str | None) -> str | None:
    """``<ABC@Example.COM>`` → ``abc@example.com``; None for an empty or unusable value.

    Ids longer than MAX_ID are hashed so they fit key columns and still compare equal.
    """
    if not value:
        return None
    # 8-bit bytes (kept by the parser as lone surrogates) are read as UTF-8, invalid ones as
    # U+FFFD, the same as message_id_of reads them from the raw bytes: an id is always
    # valid text, so it can be a key and a quarantine entry on any database.
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    value = _FOLD.sub("", value).strip()
    m = _ANGLE.search(value)
    inner = m.group(1) if m else value
    inner = "".join(inner.split()).lower()
    if not inner or inner in ("<>",):
        return None
    if len(inner) > MAX_ID:
        return "h:" + hashlib.blake2b(inner.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return inner


def message_ids(value: str | None) -> list[str]:
    """All ids of a References / In-Reply-To header, normalised, in order."""
    if not value:
        return []
    found = _ANGLE.findall(value)
    tokens = found if found else value.split()
    out: list[str] = []
    for tok in tokens:
        n = normalize_message_id(tok)
        if n and n not in out:
            out.append(n)
    return out


def split_raw(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, body) of a raw message, split at the first blank line."""
    m = _HEADER_END.search(raw)
    if m is None:
        return raw, b""
    return raw[: m.start()], raw[m.end() :]


def message_id_of(raw: bytes) -> str | None:
    """The normalised Message-ID of a raw message, reading only its header block (cheap)."""
    head, _ = split_raw(raw)
    m = _MESSAGE_ID.search(head)
    if m is None:
        return None
    return normalize_message_id(m.group(1).decode("utf-8", "replace"))
