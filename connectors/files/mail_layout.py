"""The layout of a mail export on disk: which files are mbox files, which folders hold one
message per file (Maildir ``cur``/``new``, ``.eml`` folders), and the folder name each carries.

Walking the tree only lists and sniffs; it reads no message. Kept apart from
:mod:`connectors.files.mailfiles`, which owns the cursor and the paging, so the rules for
recognising a layout (suffixes, Maildir++ dot folders, index files to skip) live in one place.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from connectors.page import RawBad
from kizuna.errors import ConfigError

Format = Literal["auto", "mbox", "maildir", "eml"]

_MBOX_SUFFIXES = frozenset({".mbox", ".mbx"})
_INDEX_SUFFIXES = frozenset({".msf", ".index", ".db", ".sqlite", ".json", ".lock", ".bak"})


@dataclass(frozen=True)
class Mbox:
    path: Path
    key: str
    folder: str


@dataclass(frozen=True)
class Single:
    path: Path
    key: str
    folder: str


@dataclass(frozen=True)
class MsgDir:
    """A folder whose every selected file is one message."""

    path: Path
    key: str
    folder: str
    maildir: bool
    pick: Callable[[str], bool]


Unit = Mbox | Single | MsgDir


def is_maildir(p: Path) -> bool:
    return (p / "cur").is_dir() and (p / "new").is_dir()


def _rel(root: Path, p: Path) -> str:
    rel = p.relative_to(root).as_posix()
    return rel if rel != "." else ""


def _looks_like_mbox(p: Path) -> bool:
    try:
        with p.open("rb") as f:
            return f.read(5) == b"From "
    except OSError:
        return False


def _maildir_folder(rel: str) -> str:
    """Maildir++ ``.Sent`` → ``Sent``; the Maildir root is ``INBOX``."""
    parts = [p.lstrip(".") for p in rel.split("/") if p]
    return "/".join(p for p in parts if p) or "INBOX"


def plan(root: Path, fmt: Format = "auto") -> Iterator[Unit | RawBad]:
    """What to read under ``root``, in a stable order."""
    if not root.exists():
        raise ConfigError(
            f"mail path not found: {root}",
            field="path",
            fix="point `path` at an mbox file, a Maildir, or a folder of .eml files",
        )
    if root.is_file():
        name = root.name
        if fmt == "mbox" or (fmt == "auto" and _looks_like_mbox(root)):
            yield Mbox(root, name, root.stem)
        elif fmt == "maildir":
            raise ConfigError(
                f"{root} is a file, not a Maildir",
                field="format",
                fix="use format: mbox or eml, or point path at the Maildir folder",
            )
        else:
            yield Single(root, name, "")
        return
    if fmt == "maildir" and not is_maildir(root):
        raise ConfigError(
            f"{root} is not a Maildir (no cur/ and new/ inside)",
            field="path",
            fix="point path at the Maildir folder, or use format: auto",
        )
    yield from _walk(root, root, fmt)


def _walk(root: Path, d: Path, fmt: Format) -> Iterator[Unit | RawBad]:
    rel = _rel(root, d)
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError as exc:
        why = f"cannot list folder {rel or '.'}: {exc.strerror or exc}"
        yield RawBad(rel or ".", why, path=str(d))
        return
    maildir = fmt in ("auto", "maildir") and is_maildir(d)
    if maildir:
        folder = _maildir_folder(rel)
        for sub in ("new", "cur"):
            key = f"{rel}/{sub}" if rel else sub
            yield MsgDir(d / sub, key, folder, True, lambda n: not n.startswith("."))
    elif fmt != "maildir":
        yield from _files_here(root, d, rel, entries, fmt)
    for e in entries:
        if not e.is_dir(follow_symlinks=False):
            continue
        if maildir and e.name in ("cur", "new", "tmp"):
            continue
        child = Path(e.path)
        if e.name.startswith(".") and not is_maildir(child):
            continue
        yield from _walk(root, child, fmt)


def _files_here(
    root: Path, d: Path, rel: str, entries: list[os.DirEntry[str]], fmt: Format
) -> Iterator[Unit]:
    def visible_file(e: os.DirEntry[str]) -> bool:
        return not e.name.startswith(".") and e.is_file(follow_symlinks=False)

    if fmt == "eml":
        yield MsgDir(d, rel, rel, False, lambda n: not n.startswith("."))
        return
    eml_here = False
    for e in entries:
        if not visible_file(e):
            continue
        p = Path(e.path)
        suffix = p.suffix.lower()
        if suffix == ".eml":
            eml_here = True
        elif suffix in _INDEX_SUFFIXES:
            continue
        elif fmt == "mbox" or suffix in _MBOX_SUFFIXES or (not suffix and _looks_like_mbox(p)):
            yield Mbox(p, _rel(root, p), _rel(root, p.with_suffix("")))
    if eml_here and fmt == "auto":
        yield MsgDir(d, rel, rel, False, lambda n: n.lower().endswith(".eml"))
