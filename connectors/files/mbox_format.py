"""The mbox format: splitting, ``>From`` unquoting, flags, and resuming after an append.

Pure byte handling over an open binary file; :mod:`connectors.files.mailfiles` owns the cursor.
A message starts at a ``From `` line at the start of the file or after a blank line (what
``mailbox``, procmail, Postfix and Thunderbird write); the blank lines before the next
separator are not part of the message, so a message has the same bytes whether a writer
puts its separator blank line after each message or before the next one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

TAIL = 1024
"""Bytes before a resume offset whose digest proves the file was appended, not rewritten."""

_FROM_QUOTED = re.compile(rb"^>+From ", re.MULTILINE)
_STATUS = re.compile(rb"^(x-)?status:[ \t]*([A-Za-z]*)", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class MboxEntry:
    """One message (``raw``) or, with ``raw`` None, just the end of the data read.

    ``start`` is the offset of its ``From`` line, ``end`` where the next read resumes and
    ``tail`` the digest of the bytes before ``end``.
    """

    raw: bytes | None
    start: int
    end: int
    tail: str


def digest(data: bytes) -> str:
    return hashlib.blake2b(data[-TAIL:], digest_size=8).hexdigest()


def mbox_flags(raw: bytes) -> str:
    """Maildir letters from mbox ``Status: RO`` / ``X-Status: AFD`` headers."""
    m = _HEADER_END.search(raw)
    head = raw[: m.start()] if m else raw
    letters: set[str] = set()
    for x, value in _STATUS.findall(head):
        v = value.decode("ascii").upper()
        if x:
            letters |= {"R" for c in v if c == "A"} | {"F" for c in v if c == "F"}
            letters |= {"T" for c in v if c == "D"}
        elif "R" in v:
            letters.add("S")
    return "".join(sorted(letters))


def _separator_at(before: bytes, head: bytes) -> bool:
    """Would a full read also start a message at this offset?

    Appended mail begins with its ``From`` line after a blank line, or with the blank line
    itself (some writers put it before, not after, each message).
    """
    if head == b"":
        return True
    if head.startswith(b"From "):
        return before in (b"\n", b"\r\n") or before.endswith((b"\n\n", b"\n\r\n"))
    if head.startswith((b"\nFrom ", b"\r\nFrom ")):
        return before.endswith(b"\n")
    return False


def resume_point(f: BinaryIO, offset: int, tail: str) -> tuple[int, bytes]:
    """``(offset, bytes before it)`` if the file still holds what was read up to ``offset``
    and new mail starts there; else ``(0, b"")``: read the file again from the start."""
    f.seek(0, 2)
    size = f.tell()
    if not 0 < offset <= size:
        return 0, b""
    f.seek(max(0, offset - TAIL))
    before = f.read(min(TAIL, offset))
    head = f.read(7)
    if digest(before) == tail and _separator_at(before, head):
        return offset, before
    return 0, b""


def _unquote(lines: list[bytes]) -> bytes:
    end = len(lines)
    while end and lines[end - 1].strip(b"\r\n") == b"":
        end -= 1
    data = b"".join(lines[:end])
    return _FROM_QUOTED.sub(lambda m: m.group(0)[1:], data)


def mbox_entries(f: BinaryIO, start: int = 0, before: bytes = b"") -> Iterator[MboxEntry]:
    """Messages from ``start`` to the end of the file; the last entry always ends at EOF."""
    f.seek(start)
    recent = before[-TAIL:]
    msg_start = start
    from_line = b""
    lines: list[bytes] = []
    prev_blank = True

    def emit() -> MboxEntry:
        nonlocal recent
        recent = (recent + from_line + b"".join(lines))[-TAIL:]
        end = msg_start + len(from_line) + sum(map(len, lines))
        return MboxEntry(_unquote(lines), msg_start, end, digest(recent))

    for line in f:
        if line.startswith(b"From ") and prev_blank:
            if from_line or any(x.strip() for x in lines):
                entry = emit()
                yield entry
                msg_start = entry.end
            elif lines:  # blank lines before the first separator
                recent = (recent + b"".join(lines))[-TAIL:]
                msg_start += sum(map(len, lines))
            from_line = line
            lines = []
        else:
            lines.append(line)
        prev_blank = line in (b"\n", b"\r\n")
    if from_line or any(x.strip() for x in lines):
        yield emit()
    else:
        recent = (recent + b"".join(lines))[-TAIL:]
        yield MboxEntry(None, msg_start, msg_start + sum(map(len, lines)), digest(recent))
