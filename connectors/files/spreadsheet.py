"""Spreadsheet exports on disk: CSV (UTF-8, UTF-8 with BOM, Shift_JIS as cp932) and ``.xlsx``.

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

import csv
import hashlib
import io
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, Literal

from connectors.page import Cursor, Page, RawBad
from kizuna.errors import FatalError

Encoding = Literal["auto", "utf-8", "utf-8-sig", "cp932", "shift_jis"]

PAGE_SIZE = 2000
_HASH_CHUNK = 1 << 20
_SNIFF_LIMIT = 8 << 20
_BOM = b"\xef\xbb\xbf"
# A cell larger than csv's default limit (128 KiB) is legal in an export (long notes).
csv.field_size_limit(16 << 20)


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
    return path.suffix.lower() in (".xlsx", ".xlsm")


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


def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) if the bytes are valid UTF-8, else cp932.

    Reads until the first chunk holding non-ASCII bytes (or the sniff limit): an export whose
    first rows are ASCII only still gets judged by its Japanese text.
    """
    import codecs

    with path.open("rb") as f:
        head = f.read(len(_BOM))
        if head == _BOM:
            return "utf-8-sig"
        dec = codecs.getincrementaldecoder("utf-8")()
        data = head
        read = len(head)
        while True:
            if not data.isascii():
                try:
                    dec.decode(data, final=False)
                except UnicodeDecodeError:
                    return "cp932"
                return "utf-8"
            dec.decode(data, final=False)
            if read >= _SNIFF_LIMIT:
                return "utf-8"
            data = f.read(1 << 16)
            if not data:
                return "utf-8"
            read += len(data)


def resolve_encoding(path: Path, encoding: str) -> str:
    enc = encoding.lower().replace("_", "-")
    if enc == "auto":
        return detect_encoding(path)
    if enc in ("shift-jis", "sjis", "cp932", "windows-31j", "ms932"):
        return "cp932"
    if enc in ("utf-8", "utf8"):
        return "utf-8"
    if enc in ("utf-8-sig", "utf8-sig"):
        return "utf-8-sig"
    raise FatalError(f"unsupported encoding {encoding!r} for {path}")


def estimate_rows(path: Path) -> int | None:
    """A cheap row-count estimate for progress bars (size / mean line length of the head)."""
    try:
        size = path.stat().st_size
        if is_xlsx(path):
            return _xlsx_rows(path)
        with path.open("rb") as f:
            head = f.read(1 << 18)
    except OSError:
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
    sheet: str | None = None,
    key_candidates: Sequence[str] = (),
    page_size: int = PAGE_SIZE,
    snapshot: bool = True,
) -> Iterator[Page[SheetCursor]]:
    """Pages of rows from the file; nothing at all when it is the file the cursor saw.

    ``key_candidates``: the first one present in the header is the row key; a row whose key
    cell is empty is quarantined. ``snapshot=False`` leaves rows missing from the file alone.
    """
    ident = identify(path)
    if ident.same_file(cursor):
        return
    rows = _xlsx_rows_iter(path, sheet) if is_xlsx(path) else _csv_rows_iter(path, encoding)
    yield from _paginate(rows, ident, key_candidates, page_size, snapshot, path)


# -- rows ------------------------------------------------------------------------------------
_Row = tuple[int, list[str] | None, str | None, str | None, bool]
"""(line, cells, problem, text, lenient): lenient rows are padded when short (xlsx stores no
trailing empty cells); CSV rows must be whole. A tuple, not a class: there is one per row."""


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
    rows: Iterator[_Row],
    ident: FileIdentity,
    key_candidates: Sequence[str],
    page_size: int,
    snapshot: bool,
    path: Path,
) -> Iterator[Page[SheetCursor]]:
    header: list[str] | None = None
    key_at: int | None = None
    width = 0
    records: list[dict[str, Any]] = []
    bad: list[RawBad] = []
    seen: list[str] = []
    total = 0
    for line, cells, problem, text, lenient in rows:
        if header is None:
            if cells is None:
                raise FatalError(f"{path}: line {line}: header unreadable: {problem}")
            if not any(c.strip() for c in cells):
                continue
            header = _header(cells)
            width = len(header)
            key = pick_key(header, key_candidates) if key_candidates else None
            if key_candidates and key is None:
                raise FatalError(
                    f"{path}: no key column; looked for {', '.join(key_candidates)} "
                    f"in headers {', '.join(header)}"
                )
            key_at = header.index(key) if key is not None else None
            continue
        # The common case first: a whole, decodable row with its key.
        if (
            problem is None
            and cells is not None
            and len(cells) == width
            and (cells[key_at].strip() if key_at is not None else any(cells))
        ):
            records.append(dict(zip(header, cells, strict=True)))
            total += 1
            if len(records) + len(bad) >= page_size:
                yield Page(records, ident.cursor(complete=False, rows=total), bad=bad, seen=seen)
                records, bad, seen = [], [], []
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
            text = text if text is not None else _csv_line(cells or [])
            bad.append(RawBad(sid, f"line {line}: {problem}", text))
            if sid is not None:
                seen.append(sid)  # present but broken: not vanished
        else:
            records.append(dict(zip(header, cells or (), strict=True)))
        total += 1
        if len(records) + len(bad) >= page_size:
            yield Page(records, ident.cursor(complete=False, rows=total), bad=bad, seen=seen)
            records, bad, seen = [], [], []
    if header is None:
        raise FatalError(f"{path}: the file has no header row")
    yield Page(
        records,
        ident.cursor(complete=True, rows=total),
        bad=bad,
        seen=seen,
        snapshot_end=snapshot,
    )


def _csv_line(cells: Sequence[str]) -> str:
    """A row as CSV text again, for quarantine: quoted as needed so it can be pasted back."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(cells)
    return buf.getvalue()


def _decoded_lines(f: IO[bytes], encoding: str, problems: dict[int, str]) -> Iterator[str]:
    """Lines as text (endings kept, as ``open(newline="")`` gives them to ``csv``).

    Decodes a megabyte at a time; only a block that fails is decoded line by line, so the
    lines with bytes the encoding rejects are noted (by the count of lines handed out,
    which is what ``csv.reader.line_num`` counts) and passed on with U+FFFD. Cutting blocks
    at LF is safe for UTF-8 and cp932 alike: 0x0A is never part of a multi-byte character.
    """
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    n = 0
    rest = b""
    first = True
    while True:
        chunk = f.read(_HASH_CHUNK)
        block = rest + chunk
        if not block:
            return
        cut = len(block) if not chunk else block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        block, rest = block[:cut], block[cut:]
        if first:
            first = False
            if block.startswith(_BOM):
                block = block[len(_BOM) :]
        try:
            lines = io.StringIO(block.decode(codec), newline="").readlines()
        except UnicodeDecodeError:
            parts = block.split(b"\n")
            if not parts[-1]:
                parts.pop()
            for raw in parts:
                raw += b"\n"
                n += 1
                try:
                    yield raw.decode(codec)
                except UnicodeDecodeError as exc:
                    where = raw[exc.start : exc.end].hex(" ")
                    problems[n] = f"bytes {where} at offset {exc.start} are not {encoding}"
                    yield raw.decode(codec, "replace")
            continue
        n += len(lines)
        yield from lines
        if not chunk:
            return


def _csv_rows_iter(path: Path, encoding: str) -> Iterator[_Row]:
    enc = resolve_encoding(path, encoding)
    problems: dict[int, str] = {}
    with path.open("rb") as f:
        reader = csv.reader(_decoded_lines(f, enc, problems))
        last = 0
        while True:
            start = last + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                last = reader.line_num
                yield (start, None, f"not valid CSV ({exc})", None, False)
                continue
            last = reader.line_num
            problem = None
            if problems:
                hit = [problems.pop(n) for n in range(start, last + 1) if n in problems]
                if hit:
                    problem = "; ".join(hit)
            if problem is not None:
                yield (start, cells, problem, _csv_line(cells), False)
            else:
                yield (start, cells, None, None, False)


# -- xlsx ------------------------------------------------------------------------------------
def _cell_text(v: Any) -> str:
    """A cell as the text a person sees, so CSV and xlsx exports of one sheet hash alike."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, datetime):
        if v.time() == time(0):
            return v.date().isoformat()
        return v.isoformat(sep=" ")
    if isinstance(v, date | time):
        return v.isoformat()
    return str(v)


def _open_workbook(path: Path) -> Any:
    import openpyxl

    try:
        with warnings.catch_warnings():
            # Real exports carry features openpyxl skips (data validation, slicers); fine.
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
            return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise FatalError(f"{path}: not a readable .xlsx workbook ({exc})") from None


def _sheet(wb: Any, name: str | None, path: Path) -> Any:
    if name is None:
        return wb.worksheets[0]
    if name not in wb.sheetnames:
        raise FatalError(f"{path}: no sheet {name!r} (sheets: {', '.join(wb.sheetnames)})")
    return wb[name]


def _xlsx_rows(path: Path) -> int | None:
    wb = _open_workbook(path)
    try:
        n = wb.worksheets[0].max_row
        return max(int(n) - 1, 0) if n else None
    finally:
        wb.close()


def _xlsx_rows_iter(path: Path, sheet: str | None) -> Iterator[_Row]:
    wb = _open_workbook(path)
    try:
        ws = _sheet(wb, sheet, path)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
            for n, values in enumerate(ws.iter_rows(values_only=True), 1):
                cells = [_cell_text(v) for v in values]
                while cells and cells[-1] == "":
                    cells.pop()
                yield (n, cells, None, None, True)
    finally:
        wb.close()


__all__ = [
    "PAGE_SIZE",
    "Encoding",
    "FileIdentity",
    "SheetCursor",
    "detect_encoding",
    "estimate_rows",
    "fold_header",
    "identify",
    "pages",
    "pick_key",
]
