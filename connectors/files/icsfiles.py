"""Calendar files on disk: one ``.ics`` file or a folder of them, read as events (UIDs).

Each raw record is ``{"uid", "ics", "file"}``: the VCALENDAR text of one event (every
component of that UID, merged across files, with its VTIMEZONEs) and the first file it came
from. A recurring event also carries ``"window"`` (the expansion window the caller passed), so
its payload hash — and so the engine's "unchanged" test — moves when the window moves, while
single events are untouched by it.

Incremental reading: the cursor keeps a fingerprint per file (size, mtime_ns, sha256) and the
UIDs it held. An unchanged file is not parsed; its UIDs go to ``Page.seen``. A changed file is
parsed together with every other file sharing a UID with it (so the merged event is complete),
and its events are emitted. The last page sets ``snapshot_end``: an event gone from every file
is then marked deleted. A file that cannot be parsed is reported as ``RawBad`` and its
previous UIDs count as seen — an unreadable file never deletes what it held.

The cursor after a page lists only files whose events are all stored, so a crash mid-pass
re-reads the rest on the next run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectors.files import ical_split
from connectors.page import Cursor, Page, RawBad

PAGE_SIZE = 200
SUFFIXES = (".ics", ".ical", ".ifb", ".icalendar")


class FileState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    size: int
    mtime_ns: int
    sha256: str
    uids: list[str] = Field(default_factory=list)
    bad: bool = False


class IcsCursor(Cursor):
    files: dict[str, FileState] = Field(default_factory=dict)
    """Relative path (POSIX) → fingerprint and UIDs, for files fully stored."""
    window: list[str] | None = None
    """The expansion window the files were read with; a new one re-reads every file."""


def ics_files(path: Path) -> list[Path]:
    """The calendar files under ``path`` (itself if a file), in a stable order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no calendar file or folder at {path}")
    found = [
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(found, key=lambda p: p.relative_to(path).as_posix())


@dataclass
class _File:
    rel: str
    path: Path
    size: int
    mtime_ns: int
    sha256: str | None = None


def _rel(root: Path, p: Path) -> str:
    return p.name if root.is_file() else p.relative_to(root).as_posix()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def events(
    path: Path,
    cursor: IcsCursor | None,
    *,
    window: Sequence[str] | None = None,
    page_size: int = PAGE_SIZE,
) -> Iterator[Page[IcsCursor]]:
    """Pages of events from the files under ``path`` changed since ``cursor``."""
    old = cursor.files if cursor else {}
    win = list(window) if window is not None else None
    reread_all = cursor is None or cursor.window != win
    files: list[_File] = []
    for p in ics_files(path):
        st = p.stat()
        files.append(_File(_rel(path, p), p, st.st_size, st.st_mtime_ns))

    # 1. Which files changed? Same size and mtime: trust it; else compare content hashes.
    unchanged: dict[str, FileState] = {}
    changed: list[_File] = []
    for f in files:
        prev = None if reread_all else old.get(f.rel)
        if prev is not None and (prev.size, prev.mtime_ns) == (f.size, f.mtime_ns):
            unchanged[f.rel] = prev
            continue
        if prev is not None:
            f.sha256 = _sha(f.path.read_bytes())
            if f.sha256 == prev.sha256:
                unchanged[f.rel] = prev.model_copy(update={"mtime_ns": f.mtime_ns})
                continue
        changed.append(f)

    # 2. Parse changed files to learn their UIDs; pull in unchanged files sharing a UID.
    #    Only the UIDs are kept: step 3 parses again group by group, so memory is bounded by
    #    the largest group of files sharing events, not by the folder.
    parsed: dict[str, FileState] = {}
    bad: list[RawBad] = []
    bad_states: dict[str, FileState] = {}
    for f in changed:
        data = f.path.read_bytes()
        sha = _sha(data)
        try:
            cals = ical_split.parse(data)
        except (ValueError, UnicodeDecodeError) as exc:
            prev_uids = old[f.rel].uids if f.rel in old else []
            bad.append(
                RawBad(
                    f"file:{f.rel}",
                    f"{f.rel}: {exc}",
                    data[:2000].decode("utf-8", "replace"),
                    path=str(f.path),
                )
            )
            bad_states[f.rel] = FileState(
                size=f.size, mtime_ns=f.mtime_ns, sha256=sha, uids=prev_uids, bad=True
            )
            continue
        parsed[f.rel] = FileState(
            size=f.size, mtime_ns=f.mtime_ns, sha256=sha, uids=ical_split.uids(cals)
        )
    by_rel = {f.rel: f for f in files}
    owners: dict[str, list[str]] = {}
    for rel, state in [*unchanged.items(), *parsed.items()]:
        for uid in state.uids:
            owners.setdefault(uid, []).append(rel)
    pending = [uid for s in parsed.values() for uid in s.uids]
    pending += [uid for f in changed if f.rel in old for uid in old[f.rel].uids]
    while pending:
        uid = pending.pop()
        for rel in owners.get(uid, []):
            if rel in unchanged and rel not in parsed and not unchanged[rel].bad:
                parsed[rel] = unchanged.pop(rel)
                pending.extend(parsed[rel].uids)

    # 3. Emit group by group (files linked by a shared UID are one group), in pages of about
    #    ``page_size`` events; the cursor covers files whose every event has been emitted.
    done: dict[str, FileState] = dict(unchanged) | bad_states
    seen = sorted({uid for s in done.values() for uid in s.uids})
    order = [f.rel for f in files if f.rel in parsed]
    handled: set[str] = set()
    buffer: list[dict[str, Any]] = []
    broken_seen: list[str] = []
    first = True

    def cursor_now() -> IcsCursor:
        return IcsCursor(files=dict(sorted(done.items())), window=win)

    for rel in order:
        if rel in handled:
            continue
        group = {rel}
        todo = [rel]
        while todo:
            for uid in parsed[todo.pop()].uids:
                for other in owners.get(uid, []):
                    if other in parsed and other not in group:
                        group.add(other)
                        todo.append(other)
        members = [r for r in order if r in group]
        group_cals: list[Any] = []
        for r in members:
            try:
                group_cals.extend(ical_split.parse(by_rel[r].path.read_bytes()))
            except (ValueError, UnicodeDecodeError) as exc:  # changed since step 2
                bad.append(RawBad(f"file:{r}", f"{r}: {exc}", path=str(by_rel[r].path)))
        errors: dict[str, str] = {}
        texts = ical_split.split_by_uid(*group_cals, errors=errors)
        for uid, why in errors.items():
            where = min(owners.get(uid, [rel]))
            bad.append(RawBad(uid, f"{where}: {why}", path=str(by_rel[where].path)))
            broken_seen.append(uid)  # kept: a broken update never deletes the stored event
        for uid, text in texts.items():
            raw: dict[str, Any] = {"uid": uid, "ics": text, "file": min(owners.get(uid, [rel]))}
            if win is not None and ical_split.is_recurring(text):
                raw["window"] = win
            buffer.append(raw)
        for r in members:
            done[r] = parsed[r]
            handled.add(r)
        if len(buffer) >= page_size:
            yield Page(
                records=buffer,
                cursor=cursor_now(),
                bad=bad,
                seen=(seen if first else []) + broken_seen,
            )
            buffer, bad, broken_seen, first = [], [], [], False
    yield Page(
        records=buffer,
        cursor=cursor_now(),
        bad=bad,
        seen=(seen if first else []) + broken_seen,
        snapshot_end=True,
    )
