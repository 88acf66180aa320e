"""A local outbox: each message becomes an ``.eml`` file a person can open in a mail client.

Used by the demo and for reviewing a campaign before pointing it at a real server. The file
name is derived from the Message-ID, so the folder itself answers "was it sent?" exactly;
files are written to a temporary name and renamed, so a crash never leaves half a message
that would count as sent.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from connectors.channel import Outgoing

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(message_id: str) -> str:
    core = _SAFE.sub("_", message_id.strip("<>"))[:120]
    digest = hashlib.blake2b(message_id.encode(), digest_size=6).hexdigest()
    return f"{core}.{digest}.eml"


class OutboxChannel:
    def __init__(self, folder: Path, name: str = "outbox") -> None:
        self.folder = folder
        self.name = name

    def path_for(self, message_id: str) -> Path:
        return self.folder / file_name(message_id)

    def send(self, item: Outgoing) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path_for(item.message_id)
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(item.data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)

    def was_sent(self, message_id: str) -> bool | None:
        return self.path_for(message_id).exists()

    def close(self) -> None:
        return None
