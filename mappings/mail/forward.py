"""Forwarded messages: the inner message a forward carries, as its own record.

A forward's own activity has the outer headers (who forwarded it to whom, when). What was
forwarded — attached as ``message/rfc822`` or pasted inline under a "Forwarded message" line —
is another message, with its own sender and date: it becomes a second activity, linked both
ways (``forwarded_in`` on the inner one, ``forwarded`` on the outer). The inner record is a
copy somebody passed on, so it is kept off the timeline: the contact it records was the
original delivery (which lands on its own from the mailbox that received it) and the forward.
Its key is derived from the outer one, so a copy never overwrites the original.

Inline forwards are read from the header block mail programs write under their marker
(Gmail, Outlook, Apple Mail, Thunderbird, in English and Japanese); dates without a zone are
read in the workspace's zone. Everything here is linear in the text and bounded in count.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.utils import getaddresses, parsedate_to_datetime

from dateutil import parser as dateparser

from warehouse.identity.keys.normalize import normalize_email

MAX_FORWARDED = 5
"""Inner messages kept per forward (attached and inline together)."""
_SCAN_CHARS = 200_000
_HEADER_LINES = 12
_MAX_KEY = 490

# Lines that open a forwarded message, lower-cased and stripped of dashes and blanks.
_MARKERS = (
    "forwarded message",
    "begin forwarded message:",
    "転送メッセージ",
    "転送されたメッセージ",
    "転送済みメッセージ",
)
# Only under a forward's subject: Outlook writes these for replies too.
_AMBIGUOUS = ("original message", "元のメッセージ", "オリジナルメッセージ")
_FIELDS = {
    "from": "from",
    "差出人": "from",
    "送信者": "from",
    "date": "date",
    "sent": "date",
    "日付": "date",
    "送信日時": "date",
    "日時": "date",
    "to": "to",
    "宛先": "to",
    "cc": "cc",
    "subject": "subject",
    "件名": "subject",
}
_JP_DATE = re.compile(
    r"(\d{4})\s*[年/]\s*(\d{1,2})\s*[月/]\s*(\d{1,2})\s*日?[^\d]{0,12}?"
    r"(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?"
)
_GMT_OFFSET = re.compile(r"\b(?:GMT|UTC)\s?([+-])(\d{1,2})(?::?(\d{2}))?\b")


@dataclass
class Inline:
    """One forwarded message read from a forward's text."""

    sender: str
    sender_name: str | None
    date: datetime | None
    to: list[str]
    cc: list[str]
    subject: str | None
    text: str


def inner_key(outer_key: str, n: int, inner_id: str | None) -> str:
    """The key of a forward's n-th inner message: never the original's own key."""
    key = f"{outer_key}/fwd/{n}" + (f":{inner_id}" if inner_id else "")
    if len(key) > _MAX_KEY:
        digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape")).hexdigest()[:40]
        return f"mail:fwd:h:{digest}"
    return key


def inline_forwards(text: str, *, is_forward: bool, zone: tzinfo) -> list[Inline]:
    """Messages pasted into ``text`` under a forward marker (at most MAX_FORWARDED)."""
    lines = text[:_SCAN_CHARS].splitlines()
    starts = [i for i, line in enumerate(lines) if _opens(line, is_forward)]
    out: list[Inline] = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        got = _read(lines[start + 1 : end], zone)
        if got is not None:
            out.append(got)
        if len(out) >= MAX_FORWARDED:
            break
    return out


def _opens(line: str, is_forward: bool) -> bool:
    s = line.strip()
    if not s or len(s) > 120:
        return False
    core = s.strip("-—_=* \u3000").lower()
    if core in _MARKERS or core.startswith("forwarded by "):
        return True
    return is_forward and core in _AMBIGUOUS


def _field(line: str) -> tuple[str, str] | None:
    s = line.strip().lstrip("*").strip()
    for sep in (":", "："):
        name, found, value = s.partition(sep)
        if found:
            key = _FIELDS.get(name.strip().strip("*").strip().lower())
            if key is not None:
                return key, value.strip().strip("*").strip()
    return None


def _read(lines: list[str], zone: tzinfo) -> Inline | None:
    fields: dict[str, str] = {}
    i = 0
    while i < len(lines) and not lines[i].strip():  # Apple Mail leaves a blank line first
        i += 1
    seen = 0
    while i < len(lines) and seen < _HEADER_LINES:
        got = _field(lines[i])
        if got is None:
            if fields and not lines[i].strip():
                break
            if fields and lines[i].startswith((" ", "\t")) and "to" in fields:
                fields["to"] += " " + lines[i].strip()  # a folded To: list
                i += 1
                seen += 1
                continue
            if fields:
                break
        else:
            fields.setdefault(got[0], got[1][:2000])
        i += 1
        seen += 1
    sender = _addresses(fields.get("from", ""))
    if not sender:
        return None
    return Inline(
        sender=sender[0][0],
        sender_name=sender[0][1],
        date=parse_loose_date(fields.get("date", ""), zone),
        to=[a for a, _ in _addresses(fields.get("to", ""))],
        cc=[a for a, _ in _addresses(fields.get("cc", ""))],
        subject=fields.get("subject"),
        text="\n".join(lines[i:]).strip(),
    )


def _addresses(value: str) -> list[tuple[str, str | None]]:
    """``佐藤 <sato@x.jp>, b@y.jp`` and Outlook's ``佐藤 [mailto:sato@x.jp]`` → normalised."""
    value = value.replace("[mailto:", "<").replace("]", ">")
    out: list[tuple[str, str | None]] = []
    for name, addr in getaddresses([value])[:200]:
        email = normalize_email(addr) if addr else None
        if email:
            out.append((email, name.strip().strip("\"'") or None))
    return out


def parse_loose_date(value: str, zone: tzinfo) -> datetime | None:
    """The dates mail programs write in a forward's header block, in UTC; a date without a
    zone is read in ``zone``. None when it is not a date."""
    value = " ".join(value.split())[:120]
    if not value:
        return None
    attempts: list[Callable[[], datetime | None]] = [
        lambda: parsedate_to_datetime(value),
        lambda: _japanese(value),
        lambda: dateparser.parse(_GMT_OFFSET.sub(_offset, value.replace(" at ", " "))),
    ]
    for attempt in attempts:
        try:
            got = attempt()
        except (TypeError, ValueError, OverflowError, IndexError, dateparser.ParserError):
            continue
        if got is not None:
            return (got if got.tzinfo else got.replace(tzinfo=zone)).astimezone(UTC)
    return None


def _offset(m: re.Match[str]) -> str:
    """``GMT+9`` → ``+09:00`` (dateutil would read the POSIX sign, nine hours the other way)."""
    return f"{m.group(1)}{int(m.group(2)):02d}:{m.group(3) or '00'}"


def _japanese(value: str) -> datetime | None:
    m = _JP_DATE.search(value)
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return datetime(y, mo, d, h, mi, s)
