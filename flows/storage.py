"""Files every worker sees: reports and the outbox written there, file sources read from there.

On one machine that is the workspace's folder, as before. Past one machine a run may land
on any worker, so ``KIZUNA_STORAGE_URL`` names a location they all see: an fsspec URL
(``s3://bucket/kizuna``, ``gcs://…``, ``abfs://…``, ``smb://…``; the matching fsspec package
installed on the workers) or a path on a shared mount. The 日報 drafts and submitted reports
themselves live in the warehouse; these files are their views.

File sources (spreadsheets, mail files, ``.ics``) may name an fsspec URL as their ``path``,
or a relative path under ``KIZUNA_STORAGE_URL``: each run mirrors what changed into a local
folder (:func:`fetch_source`) and the connectors read that, as they read any local file.
fsspec is imported only when a location is not local (it is not free at CLI start-up).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

from flows.settings import settings
from flows.workspace import Workspace


class Storage:
    """A folder on an fsspec filesystem; local folders get atomic writes (temp + rename)."""

    def __init__(self, url: str) -> None:
        import fsspec

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


# File sources (spreadsheet, mail files, .ics) where every worker sees them -----------------


def source_url(ws: Workspace, path: str) -> str | None:
    """The fsspec URL a file source's ``path`` names when it is not a file of this machine:
    a URL in the path itself (``s3://bucket/exports/customers.csv``, ``memory://…``), or a
    relative path under ``KIZUNA_STORAGE_URL`` when that is not a local folder. None: read
    the path in place (``file://`` URLs and local folders included)."""
    if "://" in path:
        return None if _is_local_url(path) else path
    base = settings().storage_url
    if not base or Path(path).expanduser().is_absolute() or _is_local_url(base):
        return None
    return f"{base.rstrip('/')}/{PurePosixPath(path).as_posix()}"


def _is_local_url(url: str) -> bool:
    return "://" not in url or url.split("://", 1)[0] in ("file", "local")


def source_path(ws: Workspace, path: str) -> Path:
    """Where a file source is read on this machine: the path itself, a ``file://`` URL's
    path, a local ``KIZUNA_STORAGE_URL`` folder, or the local mirror of a remote location
    (the same path on every worker with the same ``KIZUNA_CACHE_DIR``, so a spreadsheet's
    cursor, which names its file, stays valid wherever the next run lands)."""
    url = source_url(ws, path)
    if url is not None:
        name = PurePosixPath(url.split("://", 1)[1].split("?", 1)[0].rstrip("/")).name
        return _cache_root() / hashlib.sha256(url.encode()).hexdigest()[:16] / (name or "root")
    if "://" in path:
        return _local_of(path)
    base = settings().storage_url
    if base and not Path(path).expanduser().is_absolute():
        return _local_of(base) / path
    return ws.resolve(path)


def _local_of(url: str) -> Path:
    """A ``file://`` URL (or plain folder) as a path."""
    return Path(url.split("://", 1)[1]) if "://" in url else Path(url).expanduser()


def _cache_root() -> Path:
    got = settings().cache_dir
    return got if got is not None else Path(tempfile.gettempdir()) / "kizuna-files"


def fetch_source(ws: Workspace, path: str) -> Path:
    """:func:`source_path`, brought up to date first when the source is remote: files whose
    size and change tag (mtime, ETag, checksum) are unchanged are not copied again, a file
    whose bytes did not change keeps its local mtime, and files gone from the location are
    removed. Connectors then read a local file exactly as before: cursors (sizes, mtimes,
    offsets, hashes) mean what they always meant."""
    local = source_path(ws, path)
    url = source_url(ws, path)
    if url is None:
        return local
    import fsspec

    fs, remote = fsspec.core.url_to_fs(url)
    try:
        info = fs.info(remote)
    except FileNotFoundError:
        return local  # the stream's own check names the field and the fix
    if info.get("type") == "directory":
        found = {
            PurePosixPath(p).relative_to(PurePosixPath(remote.rstrip("/"))).as_posix(): i
            for p, i in fs.find(remote, detail=True).items()
        }
    else:
        found = {"": info}
    manifest_file = local.parent / "manifest.json"
    try:
        manifest: dict[str, str] = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    for rel, inf in sorted(found.items()):
        target = local / rel if rel else local
        tag = _tag(inf)
        if tag is not None and manifest.get(rel) == tag and target.exists():
            continue
        _copy(fs, str(inf.get("name") or remote), target, _mtime_ns(inf))
        manifest[rel] = tag or ""
    if info.get("type") == "directory" and local.is_dir():
        for p in sorted(local.rglob("*"), reverse=True):
            rel = p.relative_to(local).as_posix()
            if p.is_file() and rel not in found:
                p.unlink()
                manifest.pop(rel, None)
    tmp = manifest_file.with_name(f"manifest.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
    os.replace(tmp, manifest_file)
    return local


def _tag(info: dict[str, Any]) -> str | None:
    """What says a remote file changed, besides its size; None when the location gives
    nothing but the size (then the bytes are compared)."""
    keys = ("ETag", "etag", "md5Hash", "crc32c", "checksum", "mtime", "LastModified", "updated")
    marks = {k: str(info[k]) for k in keys if info.get(k) is not None}
    return json.dumps({"size": info.get("size"), **marks}, sort_keys=True) if marks else None


def _mtime_ns(info: dict[str, Any]) -> int | None:
    for k in ("mtime", "LastModified", "updated", "last_modified"):
        v = info.get(k)
        if isinstance(v, (int, float)):
            return int(v * 1_000_000_000)
        stamp = getattr(v, "timestamp", None)
        if callable(stamp):
            return int(float(stamp()) * 1_000_000_000)
    return None


def _copy(fs: Any, remote: str, target: Path, mtime_ns: int | None) -> None:
    """The remote file under ``target``, whole or not at all; unchanged bytes keep the local
    file (and its mtime) as it is."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        fs.get_file(remote, str(tmp))
        if target.exists() and _same_bytes(tmp, target):
            return
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True
