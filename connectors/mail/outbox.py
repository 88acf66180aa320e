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
from typing import Any

from connectors.channel import Outgoing

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(message_id: str) -> str:
    core = _SAFE.sub("_", message_id.strip("<>"))[:120]
    digest = hashlib.blake2b(message_id.encode(), digest_size=6).hexdigest()
    return f"{core}.{digest}.eml"


class OutboxChannel:
    """``folder`` is a local folder, or, with ``fs`` (an fsspec filesystem: S3, GCS, a
    shared SMB folder …), a folder every worker sees, so any worker can answer
    :meth:`was_sent` for a message another one wrote."""

    def __init__(self, folder: Path | str, name: str = "outbox", fs: Any = None) -> None:
        self.folder = Path(folder) if fs is None else folder
        self.name = name
        self.fs = fs

    def path_for(self, message_id: str) -> Path:
        return Path(self.folder) / file_name(message_id)

    def _remote(self, message_id: str) -> str:
        return f"{str(self.folder).rstrip('/')}/{file_name(message_id)}"

    def send(self, item: Outgoing) -> None:
        if self.fs is not None:  # one put: an object store never shows half an object
            self.fs.makedirs(str(self.folder), exist_ok=True)
            self.fs.pipe_file(self._remote(item.message_id), item.data)
            return
        folder = Path(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        final = self.path_for(item.message_id)
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(item.data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)

    def was_sent(self, message_id: str) -> bool | None:
        if self.fs is not None:
            return bool(self.fs.exists(self._remote(message_id)))
        return self.path_for(message_id).exists()

    def close(self) -> None:
        return None
