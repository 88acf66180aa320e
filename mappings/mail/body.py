"""A parsed message's body: the text a person reads, attachments, calendar parts, forwards.

Kept apart from :mod:`mappings.mail.message` (headers, key, participants) so each stays
small. The walk is bounded: a message nested deeper than ``max_depth`` or with more than
``max_parts`` parts is refused with ``BadRecord`` (quarantined), so a hostile message cannot
make the mapping do unbounded work.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message

from kizuna.errors import BadRecord
from mappings.mail.mime import decode_bytes, decode_header, html_to_text

MAX_TEXT_BYTES = 4 << 20
"""Bytes of one text part decoded at most (the stored text is capped again, in characters)."""
MAX_DEPTH = 20
MAX_PARTS = 500
_STUB_CHARS = 200


@dataclass
class Body:
    text: str | None = None
    attachments: list[str] = field(default_factory=list)
    calendars: list[bytes] = field(default_factory=list)
    """Raw ``text/calendar`` parts (inline or attached): invitations, updates, cancellations."""
    forwarded: list[Message] = field(default_factory=list)
    """Attached messages (``message/rfc822``): a forward's inner message."""
    digest: bool = False
    """A ``multipart/digest`` part: the attached messages are a list's posts, not a forward."""


def walk(
    msg: Message, *, max_depth: int = MAX_DEPTH, max_parts: int = MAX_PARTS
) -> Iterator[Message]:
    """Every part, depth first; ``BadRecord`` past the depth or part-count limit."""
    count = 0
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        count += 1
        if count > max_parts:
            raise BadRecord(f"more than {max_parts} MIME parts (limit max_mime_parts)")
        if depth > max_depth:
            raise BadRecord(f"MIME parts nested deeper than {max_depth} (limit max_mime_depth)")
        yield part
        sub = parts(part)
        if sub:
            stack.extend((p, depth + 1) for p in reversed(sub))


def parts(part: Message) -> list[Message] | None:
    """Sub-parts of a multipart (or message/*) part; None for a leaf.

    ``get_payload()`` on a leaf decodes it with its charset parameter and raises TypeError
    on an RFC 2231 charset, so leaves are never asked.
    """
    if not part.is_multipart():
        return None
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else None


def raw_header(part: Message, name: str) -> str:
    """A header as stored (``get`` returns a ``Header`` object when it has 8-bit bytes)."""
    for key, value in part.raw_items():
        if key.lower() == name:
            return str(value)
    return ""


def _is_attachment(part: Message) -> bool:
    disposition = raw_header(part, "content-disposition").split(";", 1)[0].strip().lower()
    if disposition == "attachment":
        return True
    maintype = part.get_content_maintype()
    if maintype == "multipart":
        return False
    if disposition == "inline":
        return False
    if part.get_param("name") or part.get_param("filename", header="content-disposition"):
        return True
    return maintype in ("application", "audio", "video", "message") or (
        maintype == "image" and not part.get("content-id")
    )


def _filename(part: Message, fallbacks: list[str]) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, LookupError, UnicodeError):
        return None
    if not name:
        return None
    text, fb = decode_header(str(name))
    if fb and fb not in fallbacks:
        fallbacks.append(fb)
    return text or None


def read_body(
    msg: Message,
    fallbacks: list[str],
    *,
    max_depth: int = MAX_DEPTH,
    max_parts: int = MAX_PARTS,
) -> Body:
    """The text a person reads first, the attachment names, calendar parts and forwards.

    Plain text wins over HTML, except a stub ("view this mail as HTML") beside an HTML part
    with much more to say: then the HTML, as text, is what a person reads.
    """
    body = Body()
    plain: list[Message] = []
    html: list[Message] = []
    inside: set[int] = set()  # parts within an attached message: the forward's, not ours
    for part in walk(msg, max_depth=max_depth, max_parts=max_parts):
        if id(part) in inside:
            for sub in parts(part) or []:
                inside.add(id(sub))
            continue
        ctype = part.get_content_type()
        if part.get_content_maintype() == "message" and part is not msg:
            body.attachments.append(_filename(part, fallbacks) or ctype)
            for sub in parts(part) or []:
                body.forwarded.append(sub)
                inside.add(id(sub))
            continue
        if parts(part) is not None:
            body.digest = body.digest or ctype == "multipart/digest"
            continue
        if ctype == "text/calendar":
            data = _payload(part, fallbacks)
            if data:
                body.calendars.append(data)
        elif _is_attachment(part):
            body.attachments.append(_filename(part, fallbacks) or ctype)
        elif ctype == "text/html":
            html.append(part)
        elif ctype in ("text/plain", "text/enriched", "text/richtext"):
            plain.append(part)
    plain_text = _first_text(plain, fallbacks, is_html=False)
    html_text = _first_text(html, fallbacks, is_html=True) if html else None
    if plain_text and html_text and _is_stub(plain_text, html_text):
        body.text = html_text
    else:
        body.text = plain_text or html_text
    if body.text is None and body.forwarded:  # a forward with no text of its own
        inner = read_body(body.forwarded[0], fallbacks, max_depth=max_depth, max_parts=max_parts)
        body.text = inner.text
    return body


def _is_stub(plain: str, html: str) -> bool:
    p, h = len(plain.strip()), len(html.strip())
    return p < _STUB_CHARS and h > 3 * p


def _first_text(candidates: list[Message], fallbacks: list[str], *, is_html: bool) -> str | None:
    for part in candidates:
        data = _payload(part, fallbacks)
        if data is None:
            continue
        text, fb = decode_bytes(data[:MAX_TEXT_BYTES], part.get_content_charset())
        if fb and fb not in fallbacks:
            fallbacks.append(fb)
        if is_html:
            text = html_to_text(text)
        if text and text.strip():
            return text
    return None


def _payload(part: Message, fallbacks: list[str]) -> bytes | None:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:  # a broken transfer encoding loses the text, not the mail
        fallbacks.append(f"body undecodable: {type(exc).__name__}")
        return None
    return data if isinstance(data, bytes) else None
