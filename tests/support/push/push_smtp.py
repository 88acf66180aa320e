"""A real SMTP server (aiosmtpd) that keeps every message it accepts, keyed by Message-ID."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    raw: list[bytes] = field(default_factory=list)
    rcpt: list[list[str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    """Message-IDs accepted so far: what a search of the Sent folder would find."""
    drop_after_data: set[str] = field(default_factory=set)
    """Recipients whose mail is stored, after which the link is cut before the "250"."""
    delay: float = 0.0
    """Seconds each DATA takes to be accepted (a slow server keeps a run busy)."""
    drop_at_rcpt_once: set[str] = field(default_factory=set)
    """Recipients whose first RCPT TO cuts the link (nothing stored: safe to retry)."""
    on_message: Callable[[bytes], None] | None = None
    """Called with each stored message before the reply (e.g. file it in a Sent folder, as
    many submission servers do)."""

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            raws = list(self.raw)
        return [message_from_bytes(r, policy=policy.default) for r in raws]  # type: ignore[misc]

    def ids(self) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for m in self.messages())

    def has(self, message_id: str) -> bool:
        with self.lock:
            return message_id in self.seen


def marker(message_id: str) -> str:
    """File name under which a received Message-ID is recorded in ``sent_dir``."""
    return hashlib.sha1(message_id.encode()).hexdigest()


class _Handler:
    def __init__(self, box: Received, sent_dir: Path | None) -> None:
        self.box = box
        self.sent_dir = sent_dir

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.box.refuse:
            return "550 5.1.1 No such user"
        if address in self.box.drop_at_rcpt_once:
            self.box.drop_at_rcpt_once.discard(address)
            server.transport.abort()
            return "421 closing"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.box.delay:
            await asyncio.sleep(self.box.delay)
        with self.box.lock:
            self.box.raw.append(bytes(envelope.original_content or envelope.content))
            self.box.rcpt.append(list(envelope.rcpt_tos))
            head = bytes(envelope.content).split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
            for line in head.split("\r\n"):
                if line.lower().startswith("message-id:"):
                    mid = line.split(":", 1)[1].strip()
                    self.box.seen.add(mid)
                    if self.sent_dir is not None:  # visible to other processes
                        (self.sent_dir / marker(mid)).touch()
        if self.box.on_message is not None:
            self.box.on_message(bytes(envelope.original_content or envelope.content))
        if self.box.drop_after_data & set(envelope.rcpt_tos):
            server.transport.abort()  # stored, but the client never hears "250"
        return "250 OK"


@contextmanager
def smtp_server(sent_dir: Path | None = None) -> Iterator[tuple[Received, int]]:
    box = Received()
    port = free_port()
    ctl = Controller(_Handler(box, sent_dir), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield box, port
    finally:
        ctl.stop()
