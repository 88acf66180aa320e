"""Spreadsheet exports on disk: CSV/TSV (UTF-8 with or without BOM, Shift_JIS as cp932, EUC-JP,
UTF-16 as Excel's "Unicode テキスト") and ``.xlsx``; how a text file is written is settled in
:mod:`connectors.files.sheet_encoding`.

A file is a snapshot: every sync that finds it changed reads it whole and the last page says
so (``snapshot_end``), letting the engine retire rows that vanished. What makes this cheap is
the cursor: it records the file's identity (size, mtime, SHA-256), so an unchanged file is
recognised with one sequential hash and no row is parsed or written. A changed file is read
fully and the engine's per-row payload hash skips the rows that did not change, so a crash
mid-file costs a re-read, never a lost or doubled row.

Rows come out as ``{header: cell text}``. Anything that is not a row (a line with the wrong
number of fields, bytes the encoding cannot decode, a row without a key) becomes a ``RawBad``
naming its line, and the rest of the file lands.

Shift_JIS is always read as cp932: Excel in Japan writes cp932 (①, ～, ㈱ and NEC/IBM
extensions) and labels it Shift_JIS; the strict codec would reject or mis-decode those.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from connectors.files import sheet_encoding, sheet_lines
from connectors.files.sheet_rows import (
    MAX_CELL_CHARS,
    XLSX_MAX_BYTES,
    Row,
    Skipped,
    WorkbookRefused,
    check_workbook,
    csv_line,
    csv_rows,
    xlsx_row_count,
    xlsx_rows,
)
from connectors.page import Cursor, KnownHashes, Page, RawBad
from kizuna.errors import FatalError

Encoding = Literal[
    "auto", "utf-8", "utf-8-sig", "cp932", "shift_jis", "euc-jp", "utf-16", "utf-16-le", "utf-16-be"
]
Delimiter = Literal["auto", "comma", "tab", "semicolon"]

PAGE_SIZE = 2000
_HASH_CHUNK = 1 << 20


class SheetCursor(Cursor):
    """The file a pass read, by identity; ``complete`` only once its last page committed.

    A crash mid-file leaves ``complete=False``, so the next run reads the file again instead
    of mistaking a half-read file for an unchanged one.
    """

    path: str
    size: int
    mtime_ns: int
    sha256: str
    complete: bool = False
    rows: int = 0


@dataclass(frozen=True)
class FileIdentity:
    path: str
    size: int
    mtime_ns: int
    sha256: str

    def cursor(self, *, complete: bool, rows: int) -> SheetCursor:
        return SheetCursor(
            path=self.path,
            size=self.size,
            mtime_ns=self.mtime_ns,
            sha256=self.sha256,
            complete=complete,
            rows=rows,
        )

    def same_file(self, cursor: SheetCursor | None) -> bool:
        return (
            cursor is not None
            and cursor.complete
            and cursor.path == self.path
            and cursor.size == self.size
            and cursor.sha256 == self.sha256
        )


def identify(path: Path) -> FileIdentity:
    """Size, mtime and SHA-256 of a file; the hash, not the mtime, decides 'unchanged'."""
    try:
        st = path.stat()
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
    except FileNotFoundError:
        raise FatalError(f"spreadsheet not found: {path}") from None
    except OSError as exc:
        raise FatalError(f"cannot read spreadsheet {path}: {exc.strerror or exc}") from None
    return FileIdentity(str(path.resolve()), st.st_size, st.st_mtime_ns, h.hexdigest())


def is_xlsx(path: Path) -> bool:
    """By name, or by content: a workbook saved under a .csv name is still a workbook."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return True
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head == b"PK\x03\x04" and _zip_is_workbook(path)


def _zip_is_workbook(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return "xl/workbook.xml" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def fold_header(text: str) -> str:
    """Headers compared as an admin reads them: width, case and spacing do not matter."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def pick_key(headers: Iterable[str], candidates: Sequence[str]) -> str | None:
    """The first candidate present among the headers (compared folded), as spelled in the file."""
    by_fold: dict[str, str] = {}
    for h in headers:
        by_fold.setdefault(fold_header(h), h)
    for c in candidates:
        hit = by_fold.get(fold_header(c))
        if hit is not None:
            return hit
    return None


def estimate_rows(path: Path) -> int | None:
    """A cheap row-count estimate for progress bars (size / mean line length of the head)."""
    try:
        size = path.stat().st_size
        if is_xlsx(path):
            check_workbook(path)
            return xlsx_row_count(path)
        with path.open("rb") as f:
            head = f.read(1 << 18)
    except (OSError, WorkbookRefused):
        return None
    lines = head.count(b"\n")
    if lines <= 1 or not head:
        return max(lines - 1, 0)
    if len(head) >= size:
        return lines - 1 + (0 if head.endswith(b"\n") else 1)
    return max(int(size / (len(head) / lines)) - 1, 0)


def pages(
    path: Path,
    cursor: SheetCursor | None,
    *,
    encoding: str = "auto",
    delimiter: str = "auto",
    sheet: str | None = None,
    key_candidates: Sequence[str] = (),
    page_size: int = PAGE_SIZE,
    snapshot: bool = True,
    max_xlsx_bytes: int = XLSX_MAX_BYTES,
    max_cell_chars: int = MAX_CELL_CHARS,
    key_required: bool = True,
    known: KnownHashes | None = None,
    salt: str = "",
) -> Iterator[Page[SheetCursor]]:
    """Pages of rows from the file; nothing at all when it is the file the cursor saw.

    ``key_candidates``: the first one present in the header is the row key; a row whose key
    cell is empty is quarantined. With ``key_required=False`` a file with none of them is
    read keyless (the caller names rows). ``snapshot=False`` leaves rows missing from the
    file alone. A workbook over ``max_xlsx_bytes`` uncompressed (or inflating like a bomb) is
    one quarantined item; a row with a cell over ``max_cell_chars`` is a quarantined row.
    Each page's ``locators`` say where its records sit: ``name.csv:<n>``, the 1-based data
    row (blank rows not counted).

    With ``known`` (the hashes the store holds), a keyed text file is read as bytes first
    (:mod:`connectors.files.sheet_lines`): rows whose raw bytes, keyed by ``salt`` and the
    header, hash to a stored row are counted in ``Page.skipped`` and never decoded; the
    others carry their hash in ``Page.hashes``.
    """
    ident = identify(path)
    if ident.same_file(cursor):
        return
    rows: Iterator[Row | Skipped]
    if is_xlsx(path):
        try:
            check_workbook(path, max_xlsx_bytes)
        except WorkbookRefused as exc:
            yield Page([], ident.cursor(complete=False, rows=0), bad=[_refused(path, exc)])
            return
        rows, how = xlsx_rows(path, sheet), ""
    else:
        fmt = sheet_encoding.resolve(path, encoding, delimiter)
        how = fmt.describe()
        if known is not None and key_candidates and sheet_lines.supported(fmt):
            rows = sheet_lines.hashed_rows(
                path,
                fmt,
                known,
                salt.encode(),
                max_cell_chars,
                lambda cells: pick_key(_header(cells), key_candidates) is not None,
            )
        else:
            rows = csv_rows(path, fmt)
    yield from _paginate(
        rows, ident, key_candidates, page_size, snapshot, path, max_cell_chars, how, key_required
    )


def _refused(path: Path, exc: Exception) -> RawBad:
    return RawBad(f"file:{path.name}", str(exc), None, path=str(path))


def header(
    path: Path, *, encoding: str = "auto", delimiter: str = "auto", sheet: str | None = None
) -> tuple[list[str], str]:
    """The header row as :func:`pages` sees it, and how the file was read (for people)."""
    if not path.exists():
        raise FatalError(f"spreadsheet not found: {path}")
    if is_xlsx(path):
        rows, how = xlsx_rows(path, sheet), f"workbook, sheet {sheet or '1'}"
    else:
        fmt = sheet_encoding.resolve(path, encoding, delimiter)
        rows, how = csv_rows(path, fmt), fmt.describe()
    for line, cells, problem, _text, _lenient, _digest in rows:
        if cells is None:
            raise FatalError(f"{path}: line {line}: header unreadable: {problem}")
        if any(c.strip() for c in cells):
            return _header(cells), how
    return [], how


# -- pages ------------------------------------------------------------------------------------
def _no_key(path: Path, header: list[str], candidates: Sequence[str], how: str) -> str:
    """No key column: when the headers look garbled the encoding is the likely cause."""
    shown = ", ".join(h[:30] for h in header[:12]) + (" …" if len(header) > 12 else "")
    msg = f"{path}: no key column; looked for {', '.join(candidates)} in headers {shown}"
    if not how:
        return msg + "; set `key:` to the column that names a row"
    garbled = any("\ufffd" in h for h in header) or _looks_misread(header)
    if garbled:
        return (
            f"{path}: the headers are unreadable when {how}; set `encoding:` "
            "(utf-8, cp932, euc-jp, utf-16) in this source to the file's real encoding"
        )
    return msg + f" ({how}); set `key:` to the column that names a row, or `encoding:` if misread"


def _looks_misread(header: Sequence[str]) -> bool:
    """Half-width katakana runs are what EUC-JP or UTF-8 bytes look like read as cp932."""
    text = "".join(header)
    odd = sum(1 for ch in text if "\uff61" <= ch <= "\uff9f" or "\x80" <= ch <= "\xff")
    return bool(text) and odd / len(text) > 0.3


def _header(cells: Sequence[str]) -> list[str]:
    """Clean header names; blank ones get a position name, repeats a suffix, so no cell is lost."""
    out: list[str] = []
    seen: set[str] = set()
    for i, c in enumerate(cells, 1):
        name = c.strip().lstrip("\ufeff").strip() or f"column_{i}"
        base, n = name, 2
        while name in seen:
            name = f"{base}_{n}"
            n += 1
        seen.add(name)
        out.append(name)
    return out


def _paginate(
    rows: Iterator[Row | Skipped],
    ident: FileIdentity,
    key_candidates: Sequence[str],
    page_size: int,
    snapshot: bool,
    path: Path,
    max_cell_chars: int = MAX_CELL_CHARS,
    how: str = "",
    key_required: bool = True,
) -> Iterator[Page[SheetCursor]]:
    header: list[str] | None = None
    locs: list[str] = []
    name = path.name
    key_at: int | None = None
    width = 0
    records: list[dict[str, Any]] = []
    bad: list[RawBad] = []
    seen: list[str] = []
    hashes: list[str | None] = []
    skipped = 0
    total = 0

    def page(complete: bool = False, end: bool = False) -> Page[SheetCursor]:
        return Page(
            records,
            ident.cursor(complete=complete, rows=total),
            bad=bad,
            seen=seen,
            snapshot_end=end,
            locators=locs,
            hashes=hashes if any(hashes) else [],
            skipped=skipped,
        )

    for row in rows:
        if isinstance(row, int):  # a run of rows skipped unchanged, before decoding
            n = row
            while n:
                take = min(n, page_size - len(records) - len(bad) - skipped)
                n -= take
                total += take
                skipped += take
                if len(records) + len(bad) + skipped >= page_size:
                    yield page()
                    records, bad, seen, locs, hashes, skipped = [], [], [], [], [], 0
            continue
        line, cells, problem, text, lenient, digest = row
        if header is None:
            if cells is None:
                raise FatalError(f"{path}: line {line}: header unreadable: {problem}")
            if not any(c.strip() for c in cells):
                continue
            header = _header(cells)
            width = len(header)
            key = pick_key(header, key_candidates) if key_candidates else None
            if key_candidates and key is None and key_required:
                raise FatalError(_no_key(path, header, key_candidates, how))
            key_at = header.index(key) if key is not None else None
            continue
        # The common case first: a whole, decodable row with its key.
        if cells is not None and problem is None:
            longest = max(map(len, cells), default=0)
            if longest > max_cell_chars:
                problem = f"a cell of {longest:,} characters (limit {max_cell_chars:,})"
                text = csv_line([c[:200] for c in cells])
        if (
            problem is None
            and cells is not None
            and len(cells) == width
            and (cells[key_at].strip() if key_at is not None else any(cells))
        ):
            records.append(dict(zip(header, cells, strict=True)))
            hashes.append(digest)
            total += 1
            locs.append(f"{name}:{total}")
            if len(records) + len(bad) + skipped >= page_size:
                yield page()
                records, bad, seen, locs, hashes, skipped = [], [], [], [], [], 0
            continue
        if cells is not None and not any(cells):
            continue  # blank line or a row of empty cells: not a record
        sid = None
        if cells is not None and key_at is not None and key_at < len(cells):
            sid = cells[key_at].strip() or None
        if problem is None and cells is not None:
            if len(cells) < width and lenient:
                cells = cells + [""] * (width - len(cells))
            elif len(cells) < width:
                problem = f"{len(cells)} fields where the header has {width}"
            elif len(cells) > width:
                if any(c.strip() for c in cells[width:]):
                    problem = f"{len(cells)} fields where the header has {width}"
                else:
                    cells = cells[:width]
        if problem is None and key_at is not None and sid is None:
            problem = f"empty key column {header[key_at]!r}"
        if problem is not None:
            text = text if text is not None else csv_line(cells or [])
            bad.append(RawBad(sid, f"line {line}: {problem}", text, path=f"{path}#line{line}"))
            if sid is not None:
                seen.append(sid)  # present but broken: not vanished
        else:
            records.append(dict(zip(header, cells or (), strict=True)))
            hashes.append(digest)
            locs.append(f"{name}:{total + 1}")
        total += 1
        if len(records) + len(bad) + skipped >= page_size:
            yield page()
            records, bad, seen, locs, hashes, skipped = [], [], [], [], [], 0
    if header is None:
        raise FatalError(f"{path}: the file has no header row")
    yield page(complete=True, end=snapshot)


__all__ = [
    "PAGE_SIZE",
    "Delimiter",
    "Encoding",
    "FileIdentity",
    "SheetCursor",
    "estimate_rows",
    "fold_header",
    "header",
    "identify",
    "pages",
    "pick_key",
]
