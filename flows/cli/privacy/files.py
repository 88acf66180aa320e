"""The workspace's files in a privacy request: which mention a customer, and scrubbing them.

Kizuna writes files a person reads (the outbox's ``.eml`` files, 日報 drafts, disclosures,
quotes); an erasure must reach them too. Every file under the workspace folder is read once
(bounded: ``MAX_FILES``, ``MAX_BYTES`` each) and searched for the customer's values:

- an outbox message to them (its name comes from the Message-ID of their delivery) or any
  ``.eml`` that mentions them, and an earlier disclosure about them, are removed whole;
- any other text file is rewritten with the values masked (atomically: a temporary file,
  then a rename);
- a file Kizuna cannot edit (not UTF-8: a PDF, a spreadsheet) that holds a value is listed;
- the sources' own files (an export, a Maildir) are never changed, only listed: the data
  lives in the source system, and the admin removes it there.

The warehouse's own database files are left to the database (``compact``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from connectors.mail.outbox import file_name
from flows.workspace import Workspace
from warehouse.privacy.redact import pattern, scrub

MAX_FILES = 200_000
MAX_BYTES = 64 * 1024 * 1024
DISCLOSURES = "privacy"
"""The folder (under the workspace) disclosures are written to."""


@dataclass
class FileReport:
    removed: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    cannot_edit: list[str] = field(default_factory=list)
    in_sources: list[str] = field(default_factory=list)
    skipped: int = 0
    """Files past the bounds, not searched."""


def _source_roots(ws: Workspace) -> list[Path]:
    out = []
    for cfg in ws.sources.values():
        p = cfg.get("path") if isinstance(cfg, dict) else None
        if isinstance(p, str) and p:
            out.append(ws.resolve(p).resolve())
    return out


def _database_files(ws: Workspace) -> set[Path]:
    url = ws.warehouse_url
    if not url.startswith("sqlite:///"):
        return set()
    db = Path(url.removeprefix("sqlite:///")).resolve()
    return {db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))}


def _walk(root: Path) -> Iterator[Path]:
    for base, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in (".venv", ".git", "__pycache__"))
        for n in sorted(names):
            yield Path(base) / n


def _byte_needles(vals: Iterable[str]) -> list[bytes]:
    out: set[bytes] = set()
    for v in vals:
        for enc in ("utf-8", "cp932", "utf-16-le"):
            try:
                out.add(v.lower().encode(enc))
            except UnicodeEncodeError:
                continue
    return sorted(out)


def _under(p: Path, roots: Iterable[Path]) -> bool:
    return any(p == r or r in p.parents for r in roots)


def scan(
    ws: Workspace, vals: list[str], message_ids: Iterable[str] = (), *, change: bool
) -> FileReport:
    """Find (and with ``change``, remove or mask) the customer's values in workspace files."""
    rep = FileReport()
    if not vals:
        return rep
    rx = pattern(vals)
    needles = _byte_needles(vals)
    outbox = {file_name(m) for m in message_ids}
    sources = _source_roots(ws)
    skip = _database_files(ws)
    root = ws.root.resolve()
    privacy = root / DISCLOSURES
    for n, path in enumerate(_walk(root)):
        real = path.resolve()
        if n >= MAX_FILES:
            rep.skipped += 1
            continue
        if real in skip or path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size > MAX_BYTES:
            rep.skipped += 1
            continue
        rel = str(path.relative_to(root))
        data = path.read_bytes()
        if _under(real, sources):
            if any(x in data.lower() for x in needles):
                rep.in_sources.append(rel)
            continue
        if path.name in outbox:
            rep.removed.append(rel)
            if change:
                path.unlink()
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            if any(x in data.lower() for x in needles):
                rep.cannot_edit.append(rel)
            continue
        if rx.search(text) is None:
            continue
        if path.suffix.lower() == ".eml" or privacy in real.parents:
            rep.removed.append(rel)
            if change:
                path.unlink()
            continue
        rep.edited.append(rel)
        if change:
            tmp = path.with_name(f".{path.name}.kizuna-tmp")
            tmp.write_text(scrub(text, rx), encoding="utf-8")
            os.replace(tmp, path)
    return rep


def mentions(ws: Workspace, vals: list[str]) -> list[str]:
    """Workspace files (sources included) that mention the customer, for a disclosure."""
    rep = scan(ws, vals, change=False)
    return sorted({*rep.edited, *rep.removed, *rep.cannot_edit, *rep.in_sources})


SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def disclosure_path(ws: Workspace, customer_id: str, stamp: str) -> Path:
    return ws.root / DISCLOSURES / SAFE_NAME.sub("_", f"{customer_id}-disclosure-{stamp}.json")
