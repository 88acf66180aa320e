"""One raw RFC 5322 message → one email :class:`~warehouse.records.Activity`.

Shared by every mail source (files, IMAP, Gmail, Graph): they all end in raw bytes, and the
same message seen through two of them must become the same activity, so the key is the
normalised Message-ID and nothing source-specific goes into the mapping.

Parsing uses the stdlib ``email`` package with the ``compat32`` policy: it never raises on
broken structure and keeps header values raw, so every header is decoded here (see
:mod:`mappings.mail.mime`) with Japanese-aware charset handling. ``policy.default`` decodes
headers itself on access: it reads ``Shift_JIS`` words with the strict JIS codec (①, ～ lost)
and keeps 8-bit header bytes as surrogates — the tests compare both on the CPython corpus.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from pydantic import ValidationError

from kizuna.errors import BadRecord
from mappings.mail.body import MAX_DEPTH, MAX_PARTS, Body, read_body, walk
from mappings.mail.meaning import classify, report_attributes
from mappings.mail.mime import (
    decode_header,
    decode_words,
    message_id_of,
    message_ids,
    normalize_message_id,
    raw_header_text,
    snippet,
    split_raw,
)
from warehouse.identity.keys.normalize import normalize_email
from warehouse.records import Activity, Direction, Participant

__all__ = [
    "Parsed",
    "direction_of",
    "is_internal",
    "message_id_of",
    "message_text",
    "own_domain_set",
    "parse_message",
    "parse_parts",
]

_ROLES = (("from", "from"), ("to", "to"), ("cc", "cc"), ("bcc", "bcc"))
_MAX_NAME = 400
_MAX_EMAIL = 320
_MAX_KEY = 490
MAX_TEXT_CHARS = 200_000
"""Characters of a message's plain text stored (the whole of nearly every real mail)."""
MAX_RECIPIENTS = 1000
"""Addresses in From/To/Cc/Bcc beyond which a message is refused (a 22 MB To: header)."""
# Zone names old Japanese and Korean mailers write instead of an offset (the stdlib knows
# only the US ones and would read these as UTC, nine hours off).
_ZONES = {"JST": "+0900", "KST": "+0900"}
_ZONE_NAMES = re.compile(r"(?<![(\w])(JST|KST)(?![\w)])", re.IGNORECASE)
_AUTOMATED_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})


def own_domain_set(domains: Collection[str]) -> frozenset[str]:
    """Own domains in comparable form (``@ABC.co.jp`` → ``abc.co.jp``; ``例え.jp`` → its
    A-label ``xn--r8jz45g.jp``, the form addresses are stored in)."""
    out: set[str] = set()
    for d in domains:
        plain = d.strip().lstrip("@").rstrip(".").lower()
        if plain:
            n = normalize_email(f"x@{plain}")
            out.add(n.split("@", 1)[1] if n else plain)
    return frozenset(out)


def is_internal(address: str, own: Collection[str]) -> bool:
    """True when the address is on an own domain or one of its subdomains."""
    domain = address.rsplit("@", 1)[-1]
    return any(domain == d or domain.endswith("." + d) for d in own)


@dataclass(frozen=True)
class MailLimits:
    """Work one message may cause; each hit quarantines the message with its reason."""

    max_text_chars: int = MAX_TEXT_CHARS
    max_recipients: int = MAX_RECIPIENTS
    max_mime_depth: int = MAX_DEPTH
    max_mime_parts: int = MAX_PARTS


@dataclass(frozen=True)
class Parsed:
    """A message's activity and the body it was read from (None with ``headers_only``)."""

    activity: Activity
    body: Body | None


def parse_message(
    raw: bytes,
    *,
    own_domains: Collection[str],
    headers_only: bool = False,
    limits: MailLimits | None = None,
) -> Activity:
    """Map a raw message to its activity (see :func:`parse_parts`)."""
    return parse_parts(
        raw, own_domains=own_domains, headers_only=headers_only, limits=limits
    ).activity


def parse_parts(
    raw: bytes,
    *,
    own_domains: Collection[str],
    headers_only: bool = False,
    limits: MailLimits | None = None,
) -> Parsed:
    """Map a raw message to an activity; ``BadRecord`` says why when it cannot.

    The kind says what the message is (``email``, ``bounce``, ``auto_reply``,
    ``invitation``, ``forward``; see :mod:`mappings.mail.meaning`); bounces and
    auto-replies are off the timeline. ``body`` is the whole plain text (HTML as text) up to
    ``limits.max_text_chars``, the snippet is cut from it.

    ``headers_only`` skips the body (no text, snippet or attachment flag): a connector that
    only fetched headers gets the same key, participants, thread and direction.
    ``source_id`` is set to the key; callers replace it with their own source id.
    """
    limits = limits or MailLimits()
    if not isinstance(raw, bytes | bytearray):
        raise BadRecord(f"expected the message as bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    if not raw.strip():
        raise BadRecord("empty message")
    own = own_domain_set(own_domains)
    head, body = split_raw(raw)
    try:
        msg = message_from_bytes(head + b"\n\n" if headers_only else raw, policy=compat32)
    except Exception as exc:  # the parser is lenient; anything it raises means unparseable
        raise BadRecord(f"cannot parse message: {type(exc).__name__}: {exc}") from None
    headers = _Headers(msg)
    if not headers.names:
        raise BadRecord(f"no header fields: not a mail message (starts {raw[:40]!r})")

    fallbacks: list[str] = []
    subject, fb = decode_header(headers.first("subject"))
    _note(fallbacks, fb)
    occurred_at = _occurred_at(headers)
    mid = normalize_message_id(headers.first("message-id"))
    key = _key(mid, headers, body)

    participants = _participants(headers, own, fallbacks, limits.max_recipients)
    if not any(p.role == "from" for p in participants) and _cut_off(raw, head, body):
        raise BadRecord(
            "header block cut off (no blank line after the headers, no usable From): "
            "the file is an incomplete delivery",
            source_id=key,
        )
    refs = message_ids(headers.first("references"))
    in_reply_to = message_ids(headers.first("in-reply-to"))
    root = refs[0] if refs else (in_reply_to[0] if in_reply_to else mid)
    thread_key = _key_of(root) if root else key

    attributes: dict[str, Any] = {}
    if mid:
        attributes["message_id"] = mid
    if in_reply_to:
        attributes["in_reply_to"] = in_reply_to[0]
    list_id = headers.first("list-id")
    if list_id:
        list_text, _ = raw_header_text(list_id)
        ids = message_ids(list_text)
        attributes["list_id"] = ids[0] if ids else list_text.strip().lower()
    ctype = msg.get_content_type()
    attributes["content_type"] = ctype
    report_type = msg.get_param("report-type")
    if ctype == "multipart/report" and isinstance(report_type, str):
        attributes["report_type"] = report_type.lower()
    if _automated(headers, ctype, participants):
        attributes["automated"] = True

    text: str | None = None
    calendars = False
    forwarded = False
    parsed: Body | None = None
    if not headers_only:
        parsed = read_body(
            msg, fallbacks, max_depth=limits.max_mime_depth, max_parts=limits.max_mime_parts
        )
        text = parsed.text[: limits.max_text_chars] if parsed.text else None
        attributes["has_attachments"] = bool(parsed.attachments)
        if parsed.attachments:
            attributes["attachments"] = parsed.attachments[:20]
        calendars = bool(parsed.calendars)
        forwarded = bool(parsed.forwarded)
        if calendars:
            attributes["calendar_invite"] = True
    sender = next((p.email for p in participants if p.role == "from"), None)
    meaning = classify(
        headers.first,
        content_type=ctype,
        report_type=attributes.get("report_type"),
        subject=subject or "",
        sender=sender,
        has_calendar=calendars,
        has_message_part=forwarded,
    )
    defects = sorted(
        {
            type(d).__name__
            for part in walk(msg, max_depth=limits.max_mime_depth, max_parts=limits.max_mime_parts)
            for d in part.defects
        }
    )
    if defects:
        attributes["defects"] = defects
    if meaning.kind == "bounce" and not headers_only:
        attributes.update(report_attributes(msg))
    if fallbacks:
        attributes["charset_fallback"] = fallbacks[0] if len(fallbacks) == 1 else fallbacks[:5]

    try:
        activity = Activity(
            source_id=key,
            key=key,
            kind=meaning.kind,
            timeline=meaning.timeline,
            occurred_at=occurred_at,
            direction=direction_of(participants),
            subject=subject,
            snippet=snippet(text) if text else None,
            body=text,
            thread_key=thread_key,
            participants=participants,
            attributes=attributes,
        )
    except ValidationError as exc:
        reason = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in exc.errors()
        )
        raise BadRecord(f"invalid message: {reason}", source_id=key) from None
    return Parsed(activity, parsed)


def message_text(raw: bytes) -> str | None:
    """The decoded text a person reads first (plain part, else HTML as text), untrimmed."""
    try:
        msg = message_from_bytes(bytes(raw), policy=compat32)
    except Exception as exc:
        raise BadRecord(f"cannot parse message: {type(exc).__name__}: {exc}") from None
    return read_body(msg, []).text


class _Headers:
    """Raw header values by lower-case name, as stored (8-bit bytes kept as surrogates)."""

    def __init__(self, msg: Message) -> None:
        self.values: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            self.values.setdefault(name.strip().lower(), []).append(str(value))
        self.names = list(self.values)

    def first(self, name: str) -> str | None:
        got = self.values.get(name)
        return got[0] if got else None

    def all(self, name: str) -> list[str]:
        return self.values.get(name, [])


def _cut_off(raw: bytes, head: bytes, body: bytes) -> bool:
    """The file ends inside its header block: nothing after the headers, not even the blank
    line that ends them (a delivery interrupted while it was written)."""
    return not body and head == raw and not raw.endswith((b"\n\n", b"\r\n\r\n"))


def _note(fallbacks: list[str], fb: str | None) -> None:
    if fb and fb not in fallbacks:
        fallbacks.append(fb)


def _key_of(message_id: str) -> str:
    key = "mail:" + message_id
    if len(key) > _MAX_KEY:
        return "mail:h:" + hashlib.blake2b(message_id.encode()).hexdigest()[:40]
    return key


def _key(mid: str | None, headers: _Headers, body: bytes) -> str:
    if mid:
        return _key_of(mid)
    # No Message-ID: the same bytes in two exports must still meet. Line endings and
    # trailing blank lines differ between mbox and Maildir copies, so they are folded.
    norm_body = body.replace(b"\r\n", b"\n").rstrip()
    parts = [
        " ".join((headers.first(h) or "").split()).encode("ascii", "surrogateescape")
        for h in ("date", "from", "subject")
    ]
    digest = hashlib.blake2b(digest_size=16)
    for p in parts:
        digest.update(p + b"\x00")
    digest.update(hashlib.blake2b(norm_body, digest_size=16).digest())
    return "mail:nomid:" + digest.hexdigest()


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    text, _ = raw_header_text(value)
    text = _ZONE_NAMES.sub(lambda m: _ZONES[m.group(1).upper()], text)
    try:
        dt = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:  # "-0000": the zone is unknown; RFC 5322 says treat as UTC
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _occurred_at(headers: _Headers) -> datetime:
    """Date, else the date of the last Received header (the hop nearest the sender)."""
    date = _parse_date(headers.first("date"))
    if date is not None:
        return date
    for received in reversed(headers.all("received")):
        if ";" in received:
            got = _parse_date(received.rsplit(";", 1)[1])
            if got is not None:
                return got
    shown = headers.first("date")
    why = f"invalid Date {shown.strip()[:80]!r}" if shown else "no Date header"
    raise BadRecord(f"no usable date: {why} and no Received header with a date")


def _participants(
    headers: _Headers, own: frozenset[str], fallbacks: list[str], max_recipients: int
) -> list[Participant]:
    # Refused before parsing: an address takes at least 3 characters and a separator, so a
    # header longer than this cannot hold fewer addresses than the limit allows anyway.
    size = sum(len(v) for h, _ in _ROLES for v in headers.all(h))
    if size > max_recipients * 400:
        raise BadRecord(
            f"address headers of {size:,} characters: more than {max_recipients} recipients "
            "(limit max_recipients)"
        )
    out: list[Participant] = []
    seen: set[tuple[str, str]] = set()
    for header, role in _ROLES:
        values = headers.all(header)
        if not values:
            continue
        texts: list[str] = []
        for v in values:
            text, fb = raw_header_text(v)
            _note(fallbacks, fb)
            texts.append(text)
        for name, addr in getaddresses(texts):
            email = normalize_email(addr) if addr and len(addr) <= _MAX_EMAIL else None
            # normalize_email("a@b.") gives "a@b", which it would itself reject: keep only
            # addresses whose normal form is stable.
            if email is None or normalize_email(email) != email or (email, role) in seen:
                continue
            seen.add((email, role))
            display = _display_name(name, email, fallbacks)
            try:
                out.append(
                    Participant(
                        email=email, name=display, role=role, internal=is_internal(email, own)
                    )
                )
            except ValidationError:
                continue  # one unusable address does not make the message unusable
            if len(out) > max_recipients:
                raise BadRecord(f"more than {max_recipients} recipients (limit max_recipients)")
    return out


def _display_name(name: str, email: str, fallbacks: list[str]) -> str | None:
    if not name:
        return None
    text, fb = decode_words(name)
    _note(fallbacks, fb)
    text = " ".join(text.split()).strip().strip("\"'").strip()
    if not text or normalize_email(text) == email:
        return None
    return text[:_MAX_NAME]


def direction_of(participants: list[Participant]) -> Direction | None:
    """Inbound when the sender is outside, internal when everyone is inside, else outbound."""
    sender = next((p for p in participants if p.role == "from"), None)
    if sender is None:
        return None
    if not sender.internal:
        return "inbound"
    recipients = [p for p in participants if p.role != "from"]
    if all(p.internal for p in recipients):
        return "internal"
    return "outbound"


def _automated(headers: _Headers, ctype: str, participants: list[Participant]) -> bool:
    auto = (headers.first("auto-submitted") or "").strip().lower()
    if auto and auto != "no":
        return True
    if (headers.first("precedence") or "").strip().lower() in _AUTOMATED_PRECEDENCE:
        return True
    if ctype == "multipart/report":
        return True
    sender = next((p.email for p in participants if p.role == "from"), "")
    return sender.split("@", 1)[0] in ("mailer-daemon", "postmaster")
