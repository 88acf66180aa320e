"""Where files a person opens are written: reports and the outbox, seen by every worker.

On one machine that is the workspace's folder, as before. Past one machine a run may land
on any worker, so ``KIZUNA_STORAGE_URL`` names a location they all see: an fsspec URL
(``s3://bucket/kizuna``, ``gcs://…``, ``abfs://…``, ``smb://…``; the matching fsspec package
installed on the workers) or a path on a shared mount. The 日報 drafts and submitted reports
themselves live in the warehouse; these files are their views.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import fsspec

from flows.settings import settings
from flows.workspace import Workspace


class Storage:
    """A folder on an fsspec filesystem; local folders get atomic writes (temp + rename)."""

    def __init__(self, url: str) -> None:
        fs, base = fsspec.core.url_to_fs(url)
        self.fs: Any = fs
        self.base = base.rstrip("/") or "/"
        self.local = getattr(fs, "protocol", None) in ("file", ("file", "local"))
        self.url = url

    def sub(self, *parts: str) -> Storage:
        return Storage(self.join(*parts) if self.local else self._url(*parts))

    def join(self, *parts: str) -> str:
        return "/".join([self.base, *parts]) if parts else self.base

    def _url(self, *parts: str) -> str:
        return str(self.fs.unstrip_protocol(self.join(*parts)))

    def shown(self, *parts: str) -> PurePath:
        """What a person is told: a local path, or the location's URL."""
        return Path(self.join(*parts)) if self.local else PurePosixPath(self._url(*parts))

    def exists(self, *parts: str) -> bool:
        return bool(self.fs.exists(self.join(*parts)))

    def read_text(self, *parts: str) -> str:
        with self.fs.open(self.join(*parts), "rb") as fh:
            return bytes(fh.read()).decode("utf-8")

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """The whole file or nothing: a local file is written under a temporary name and
        renamed; an object store's single put never shows half an object."""
        path = self.join(*parts)
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def write_text(self, text: str, *parts: str) -> None:
        self.write_bytes(text.encode("utf-8"), *parts)


def root(ws: Workspace) -> Storage:
    """``KIZUNA_STORAGE_URL`` when set (shared by every worker), else the workspace folder."""
    url = settings().storage_url
    return Storage(url) if url else Storage(str(ws.root))
