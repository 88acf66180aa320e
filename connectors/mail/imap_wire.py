"""IMAP wire syntax: reading server responses (capabilities, FETCH items, UIDs, flags) and
writing what commands carry (UID sets, dates, folder names in modified UTF-7).

Pure functions over ``imaplib``'s untyped replies, with no notion of a folder or a cursor;
:mod:`connectors.mail.imap` owns the connection and the incremental read built on them.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
from collections.abc import Iterator
from datetime import date
from typing import Any


def capabilities(conn: imaplib.IMAP4) -> set[str]:
    """Post-login capabilities: CONDSTORE/QRESYNC are often announced only after LOGIN."""
    typ, data = conn.capability()
    caps: set[str] = set()
    if typ == "OK":
        for chunk in data:
            if isinstance(chunk, bytes):
                caps |= {c.upper() for c in chunk.decode(errors="replace").split()}
    return caps


def check_ok(result: tuple[str, Any]) -> None:
    typ, data = result
    if typ != "OK":
        raise imaplib.IMAP4.error(response_text(data))


def response_text(obj: Any) -> str:
    if isinstance(obj, BaseException):
        obj = obj.args[0] if obj.args else str(obj)
    if isinstance(obj, list):
        obj = b" ".join(x for x in obj if isinstance(x, bytes))
    if isinstance(obj, bytes):
        return obj.decode(errors="replace")
    return str(obj)


def close_quietly(conn: imaplib.IMAP4) -> None:
    with contextlib.suppress(imaplib.IMAP4.error, OSError, EOFError, socket.timeout):
        conn.logout()


def imap_date(d: date) -> str:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    return f"{d.day}-{months[d.month - 1]}-{d.year}"


def first_int(values: list[Any] | None) -> int | None:
    for v in values or []:
        if isinstance(v, bytes) and v.strip().isdigit():
            return int(v)
    return None


def uid_of(head: bytes) -> int | None:
    m = re.search(rb"\bUID (\d+)", head)
    return int(m.group(1)) if m else None


def flags_of(head: bytes) -> list[str]:
    m = re.search(rb"FLAGS \(([^)]*)\)", head)
    # \Recent belongs to the session, not the message: it would make every fetch look new.
    flags = m.group(1).decode(errors="replace").split() if m else []
    return sorted(f for f in flags if f.lower() != "\\recent")


def fetch_items(data: list[Any]) -> Iterator[tuple[bytes, bytes | None]]:
    """(metadata, literal) per FETCH response; items after the literal join the metadata."""
    head: bytes | None = None
    body: bytes | None = None
    for item in data:
        if isinstance(item, tuple):
            if head is not None:
                yield head, body
            head, body = item[0], item[1]
        elif isinstance(item, bytes):
            if re.match(rb"\d+ \(", item):
                if head is not None:
                    yield head, body
                head, body = item, None
            elif head is not None:
                head += b" " + item
    if head is not None:
        yield head, body


def parse_uid_set(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if ":" in part:
            a, b = part.split(":", 1)
            lo, hi = sorted((int(a), int(b)))
            out.update(range(lo, hi + 1))
        else:
            out.add(int(part))
    return out


def format_uid_set(uids: set[int]) -> str:
    """``1:3,7,9:12`` — compact and valid as an IMAP sequence set."""
    parts: list[str] = []
    run: list[int] = []
    for u in sorted(uids):
        if run and u == run[-1] + 1:
            run.append(u)
            continue
        if run:
            parts.append(f"{run[0]}:{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [u]
    if run:
        parts.append(f"{run[0]}:{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def quote_folder(folder: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3)."""
    name = encode_mutf7(folder)
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_mutf7(text: str) -> str:
    import base64

    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            b64 = base64.b64encode("".join(buf).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            buf.clear()

    for ch in text:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)
