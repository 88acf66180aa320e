"""Mail exported to disk: mbox files, Maildir folders and folders of ``.eml`` files.

Yields raw messages (bytes, untouched) in pages; the mapping (``mappings.mail.message``) decodes them.
A raw record is ``{"id", "file_id", "raw", "sha", "folder", "flags", "path"}``: ``id`` is the
message's normalised Message-ID when the injected ``id_of`` finds one (the same mail in two
folders has one id), else ``"sha:" + sha``; ``file_id`` names the copy — the file, or for a
Maildir message its folder and unique name without the flags (stable across the ``new`` →
``cur`` move and flag changes), for an mbox entry the file and the id — so two copies of one
message are two source records of one activity; ``sha`` is a digest of the bytes so the engine need not
hash whole messages; ``flags`` uses Maildir letters (S seen, R replied, F flagged, T trashed,
D draft) for Maildir names and mbox ``Status``/``X-Status`` headers alike.

Incremental by file system facts, so an unchanged export costs a ``stat`` per file:

- an mbox file keeps ``(size, mtime_ns, offset, tail)``: unchanged → skipped; grown with its
  old bytes intact (the ``tail`` digest of the bytes before ``offset`` still matches and a
  ``From`` line starts at ``offset``) → only the appended tail is read; otherwise (compacted,
  rewritten) → read again whole, and unchanged messages are skipped by the engine's hash check;
- a folder of one-message files (Maildir ``cur``/``new``, ``.eml`` folders) keeps a
  watermark: the newest ``max(mtime_ns, ctime_ns)`` read and the names carrying it. A file
  is read when its stamp is newer (delivered, copied, edited, or renamed by a flag change —
  renames update ctime) or equal and unknown. A folder not in the cursor is read whole, so a
  folder moved in with old time stamps is not missed. A pass interrupted mid-folder resumes
  after the last name committed.

Deletions are not reported and no page sets ``snapshot_end``: a mail export is an archive, a
message removed from it (or an mbox compacted) does not undo the conversation it records, and
telling "deleted" from "moved to a folder outside this path" is not possible from files.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectors.files.mail_layout import Format, Mbox, MsgDir, Single, plan
from connectors.files.mbox_format import mbox_entries, mbox_flags, resume_point
from connectors.page import Cursor, Page, RawBad

IdOf = Callable[[bytes], str | None]

PAGE_SIZE = 500
PAGE_BYTES = 64 * 1024 * 1024
MAX_ID = 400
MAX_FILE_ID = 480
_MAILDIR_FLAGS = frozenset("DFPRST")


class FileMark(BaseModel):
    """A file read to ``offset`` (mbox) or whole (single message) when it had this size/mtime."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: int
    mtime_ns: int
    offset: int = 0
    tail: str = ""


class DirPass(BaseModel):
    """A folder pass in progress: the watermark it will set, and the last name committed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stamp: int
    at_stamp: list[str]
    after: str = ""


class DirMark(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stamp: int = -1
    at_stamp: list[str] = Field(default_factory=list)
    pending: DirPass | None = None


class MailFilesCursor(Cursor):
    """Per-file marks for mbox and single files, per-folder watermarks for message folders.

    Keys are paths relative to the configured root, so moving the whole export keeps them.
    """

    files: dict[str, FileMark] = Field(default_factory=dict)
    dirs: dict[str, DirMark] = Field(default_factory=dict)


def sha_of(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def record(
    raw: bytes,
    *,
    folder: str,
    flags: str,
    path: str,
    id_of: IdOf | None,
    file_id: str | None = None,
) -> dict[str, Any]:
    """The raw dict for one message (shared by every file layout).

    ``file_id`` names this copy of the message (see the module docstring); an mbox entry is
    named by its file and its id, so it keeps its name when the mbox is compacted.
    """
    sha = sha_of(raw)
    mid = id_of(raw) if id_of is not None else None
    rid = mid if mid and len(mid) <= MAX_ID else f"sha:{sha}"
    fid = file_id or f"{path.split('#', 1)[0]}#{rid}"
    if len(fid) > MAX_FILE_ID:
        fid = "h:" + hashlib.blake2b(fid.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return {
        "id": rid,
        "file_id": fid,
        "raw": raw,
        "sha": sha,
        "folder": folder,
        "flags": flags,
        "path": path,
    }


def maildir_file_id(dir_key: str, name: str) -> str:
    """A Maildir message's name for as long as it lives: its folder (``cur``/``new`` left
    out, a message moves from one to the other when read) and its unique name (the flags
    after ``:2,`` left out, they change when it is read, replied to, flagged)."""
    folder = dir_key.rsplit("/", 1)[0] if "/" in dir_key else ""
    base = name.split(":2,", 1)[0].split("!2,", 1)[0]
    return f"{folder}/{base}" if folder else base


# -- reading -----------------------------------------------------------------------------

_Step = tuple[dict[str, Any] | RawBad | None, Callable[[], None]]
"""An item to emit (None: nothing) and how to move the cursor past it."""


@dataclass
class _State:
    files: dict[str, FileMark]
    dirs: dict[str, DirMark]
    changed: bool = False

    def cursor(self) -> MailFilesCursor:
        return MailFilesCursor(files=dict(self.files), dirs=dict(self.dirs))


@dataclass
class _Pager:
    state: _State
    page_size: int
    page_bytes: int
    records: list[dict[str, Any]] = field(default_factory=list)
    bad: list[RawBad] = field(default_factory=list)
    size: int = 0

    def add(self, item: dict[str, Any] | RawBad) -> bool:
        """Add an item; True when the page is full (flush after updating the state)."""
        if isinstance(item, RawBad):
            self.bad.append(item)
        else:
            self.records.append(item)
            self.size += len(item["raw"])
        self.state.changed = True
        return len(self.records) + len(self.bad) >= self.page_size or self.size >= self.page_bytes

    def flush(self) -> Page[MailFilesCursor]:
        page = Page(records=self.records, cursor=self.state.cursor(), bad=self.bad)
        self.records, self.bad, self.size = [], [], 0
        self.state.changed = False
        return page


def read_messages(
    root: Path,
    cursor: MailFilesCursor | None,
    *,
    fmt: Format = "auto",
    id_of: IdOf | None = None,
    page_size: int = PAGE_SIZE,
    page_bytes: int = PAGE_BYTES,
) -> Iterator[Page[MailFilesCursor]]:
    """Pages of raw messages not yet read under ``root``; each page's cursor covers it."""
    cur = cursor or MailFilesCursor()
    state = _State(dict(cur.files), dict(cur.dirs))
    pager = _Pager(state, page_size, page_bytes)
    present: set[str] = set()
    for unit in plan(root, fmt):
        if isinstance(unit, RawBad):
            if pager.add(unit):
                yield pager.flush()
            continue
        present.add(unit.key)
        if isinstance(unit, Mbox):
            steps: Iterator[_Step] = _read_mbox(unit, state, id_of)
        elif isinstance(unit, Single):
            steps = _read_single(unit, state, id_of)
        else:
            steps = _read_dir(unit, state, id_of)
        for item, commit in steps:
            # commit() moves the cursor past the item; a page is flushed only after it.
            full = pager.add(item) if item is not None else False
            commit()
            if item is None:
                state.changed = True
            if full:
                yield pager.flush()
    # Forget files and folders that are gone, so the cursor does not grow forever.
    for marks in (state.files, state.dirs):
        for key in [k for k in marks if k not in present]:
            del marks[key]
            state.changed = True
    if pager.records or pager.bad or state.changed:
        yield pager.flush()


def _stat(p: Path) -> os.stat_result | OSError:
    try:
        return p.stat()
    except OSError as exc:
        return exc


def _read_single(unit: Single, state: _State, id_of: IdOf | None) -> Iterator[_Step]:
    st = _stat(unit.path)
    if isinstance(st, OSError):
        yield (
            RawBad(unit.key, f"cannot read {unit.key}: {st.strerror or st}", path=str(unit.path)),
            _noop,
        )
        return
    mark = state.files.get(unit.key)
    if mark is not None and mark.size == st.st_size and mark.mtime_ns == st.st_mtime_ns:
        return
    new_mark = FileMark(size=st.st_size, mtime_ns=st.st_mtime_ns, offset=st.st_size)

    def commit() -> None:
        state.files[unit.key] = new_mark

    try:
        raw = unit.path.read_bytes()
    except OSError as exc:
        yield (
            RawBad(unit.key, f"cannot read {unit.key}: {exc.strerror or exc}", path=str(unit.path)),
            commit,
        )
        return
    yield (
        record(raw, folder=unit.folder, flags="", path=unit.key, id_of=id_of, file_id=unit.key),
        commit,
    )


def _noop() -> None:
    return None


# -- message folders (Maildir cur/new, .eml folders) --------------------------------------


def _stamp(st: os.stat_result) -> int:
    return max(st.st_mtime_ns, st.st_ctime_ns)


def maildir_flags(name: str) -> str:
    """``1700000000.M1P2.host:2,RS`` → ``RS`` (only the standard letters, sorted)."""
    if ":2," not in name:
        return ""
    info = name.rsplit(":2,", 1)[1]
    return "".join(sorted({c for c in info if c in _MAILDIR_FLAGS}))


def _read_dir(unit: MsgDir, state: _State, id_of: IdOf | None) -> Iterator[_Step]:
    listing: list[tuple[str, int]] = []
    try:
        with os.scandir(unit.path) as it:
            for e in it:
                if not unit.pick(e.name):
                    continue
                try:
                    st = e.stat(follow_symlinks=True)
                except OSError as exc:
                    where = f"{unit.key}/{e.name}" if unit.key else e.name
                    why = f"cannot read {where}: {exc.strerror}"
                    yield RawBad(where, why, path=str(unit.path / e.name)), _noop
                    continue
                if stat.S_ISREG(st.st_mode):
                    listing.append((e.name, _stamp(st)))
    except OSError as exc:
        why = f"cannot list folder {unit.key}: {exc.strerror or exc}"
        yield RawBad(unit.key, why, path=str(unit.path)), _noop
        return
    listing.sort()
    mark = state.dirs.get(unit.key, DirMark())
    known = set(mark.at_stamp)
    todo = [(n, s) for n, s in listing if s > mark.stamp or (s == mark.stamp and n not in known)]
    if mark.pending is not None:
        goal = mark.pending
        todo = [(n, s) for n, s in todo if n > goal.after]
    else:
        top = max([s for _, s in listing] + [mark.stamp])
        at = {n for n, s in listing if s == top}
        if top == mark.stamp:
            at |= known
        goal = DirPass(stamp=top, at_stamp=sorted(at))
    if not todo:
        done = DirMark(stamp=goal.stamp, at_stamp=goal.at_stamp)
        if done != mark:

            def finish() -> None:
                state.dirs[unit.key] = done

            yield None, finish
        return
    for name, _ in todo:
        path = unit.path / name

        def advance(name: str = name) -> None:
            state.dirs[unit.key] = DirMark(
                stamp=mark.stamp,
                at_stamp=mark.at_stamp,
                pending=goal.model_copy(update={"after": name}),
            )

        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue  # moved by a mail client between listing and reading (flag change)
        except OSError as exc:
            where = f"{unit.key}/{name}" if unit.key else name
            why = f"cannot read {where}: {exc.strerror or exc}"
            yield RawBad(where, why, path=str(path)), advance
            continue
        flags = maildir_flags(name) if unit.maildir else ""
        rel = f"{unit.key}/{name}" if unit.key else name
        fid = maildir_file_id(unit.key, name) if unit.maildir else rel
        yield (
            record(raw, folder=unit.folder, flags=flags, path=rel, id_of=id_of, file_id=fid),
            advance,
        )

    def finish_pass() -> None:
        state.dirs[unit.key] = DirMark(stamp=goal.stamp, at_stamp=goal.at_stamp)

    yield None, finish_pass


# -- mbox --------------------------------------------------------------------------------


def _read_mbox(unit: Mbox, state: _State, id_of: IdOf | None) -> Iterator[_Step]:
    st = _stat(unit.path)
    if isinstance(st, OSError):
        yield (
            RawBad(unit.key, f"cannot read {unit.key}: {st.strerror or st}", path=str(unit.path)),
            _noop,
        )
        return
    mark = state.files.get(unit.key)
    if (
        mark is not None
        and mark.size == st.st_size
        and mark.mtime_ns == st.st_mtime_ns
        and mark.offset >= st.st_size
    ):
        return
    try:
        f = unit.path.open("rb")
    except OSError as exc:
        yield (
            RawBad(unit.key, f"cannot read {unit.key}: {exc.strerror or exc}", path=str(unit.path)),
            _noop,
        )
        return
    size, mtime = st.st_size, st.st_mtime_ns

    def mark_at(offset: int, tail: str) -> Callable[[], None]:
        def commit() -> None:
            state.files[unit.key] = FileMark(size=size, mtime_ns=mtime, offset=offset, tail=tail)

        return commit

    with f:
        start, before = resume_point(f, mark.offset, mark.tail) if mark is not None else (0, b"")
        for entry in mbox_entries(f, start, before):
            if entry.raw is None:
                yield None, mark_at(entry.end, entry.tail)
                continue
            item = record(
                entry.raw,
                folder=unit.folder,
                flags=mbox_flags(entry.raw),
                path=f"{unit.key}#{entry.start}",
                id_of=id_of,
            )
            yield item, mark_at(entry.end, entry.tail)
