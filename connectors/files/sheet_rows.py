"""A spreadsheet file's rows as lists of cell text, per format: CSV bytes decoded (the
encoding sniffed, cp932 for Shift_JIS, undecodable lines noted rather than fatal) and
``.xlsx`` cells rendered as the text a person sees.

:mod:`connectors.files.spreadsheet` owns the file identity, the header, the key column and
the pages; it reads every format through the ``Row`` tuples made here.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

from connectors.files.sheet_encoding import TextFormat
from kizuna.errors import FatalError

_DECODE_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"
# A cell larger than csv's default limit (128 KiB) is legal in an export (long notes).
csv.field_size_limit(16 << 20)

XLSX_MAX_BYTES = 512 << 20
"""Uncompressed size of a workbook's parts that is read at most (a 200 KB zip can hold GBs)."""
XLSX_MAX_RATIO = 200
"""Compression ratio of any part beyond which a workbook is refused as a decompression bomb
(real sheets compress about 5-20x; the 206 KB bomb of issue 16 was ~25,000x)."""
MAX_CELL_CHARS = 32_767
"""Excel's own cell limit: a longer cell is a broken row, quarantined."""

Row = tuple[int, list[str] | None, str | None, str | None, bool, str | None]
"""(line, cells, problem, text, lenient, digest): lenient rows are padded when short (xlsx
stores no trailing empty cells); CSV rows must be whole. ``digest`` is the hash of the row's
raw bytes when :mod:`connectors.files.sheet_lines` read it; cells and problem both None is a
row that reader skipped as unchanged. A tuple, not a class: there is one per row."""

Skipped = int
"""A run of that many rows :mod:`connectors.files.sheet_lines` skipped as unchanged
(their bytes hash to what the store holds): one count per run, not a tuple per row."""


def csv_line(cells: Sequence[str]) -> str:
    """A row as CSV text again, for quarantine: quoted as needed so it can be pasted back."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(cells)
    return buf.getvalue()


def _decoded_lines(
    f: IO[bytes], encoding: str, problems: dict[int, str], first: bool = True
) -> Iterator[str]:
    """Lines as text (endings kept, as ``open(newline="")`` gives them to ``csv``).

    Decodes a megabyte at a time; only a block that fails is decoded line by line, so the
    lines with bytes the encoding rejects are noted (by the count of lines handed out,
    which is what ``csv.reader.line_num`` counts) and passed on with U+FFFD. Cutting blocks
    at LF is safe for UTF-8 and cp932 alike: 0x0A is never part of a multi-byte character.
    """
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    n = 0
    rest = b""
    while True:
        chunk = f.read(_DECODE_CHUNK)
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


def _utf16_lines(f: IO[bytes], encoding: str) -> Iterator[str]:
    """UTF-16 cannot be cut at a 0x0A byte; its decoder reads it (BOM and all) as a stream.
    Unpaired surrogates become U+FFFD: such a cell is visibly damaged, never a stopped file."""
    yield from io.TextIOWrapper(f, encoding=encoding, errors="replace", newline="")


def csv_rows(path: Path, fmt: TextFormat, start: tuple[int, int] = (0, 0)) -> Iterator[Row]:
    """The file's rows; from ``start`` = (byte offset, lines before it) when another reader
    handed over at a record boundary (line numbers still count from the top of the file)."""
    enc = fmt.encoding
    problems: dict[int, str] = {}
    offset, before = start
    with path.open("rb") as f:
        f.seek(offset)
        lines = (
            _utf16_lines(f, enc)
            if enc.startswith("utf-16")
            else _decoded_lines(f, enc, problems, first=offset == 0)
        )
        reader = csv.reader(lines, delimiter=fmt.delimiter)
        last = 0
        while True:
            first = last + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                last = reader.line_num
                yield (before + first, None, f"not valid CSV ({exc})", None, False, None)
                continue
            last = reader.line_num
            problem = None
            if problems:
                hit = [problems.pop(n) for n in range(first, last + 1) if n in problems]
                if hit:
                    problem = "; ".join(hit)
            if problem is not None:
                yield (before + first, cells, problem, csv_line(cells), False, None)
            else:
                yield (before + first, cells, None, None, False, None)


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


class WorkbookRefused(ValueError):
    """A workbook over a limit: quarantined with the reason, never opened."""


def check_workbook(
    path: Path, max_bytes: int = XLSX_MAX_BYTES, max_ratio: int = XLSX_MAX_RATIO
) -> None:
    """Refuse a decompression bomb from the zip directory alone, before any part is inflated."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise FatalError(f"{path}: not a readable .xlsx workbook ({exc})") from None
    total = sum(i.file_size for i in infos)
    if total > max_bytes:
        raise WorkbookRefused(
            f"{path.name}: {total:,} bytes uncompressed, over the limit of {max_bytes:,} "
            "(raise max_xlsx_mb on the source if the workbook is genuine)"
        )
    for i in infos:
        if i.file_size > 1 << 20 and i.file_size > max_ratio * max(i.compress_size, 1):
            raise WorkbookRefused(
                f"{path.name}: part {i.filename} inflates {i.file_size // max(i.compress_size, 1):,}x "
                f"(limit {max_ratio}x): refused as a decompression bomb"
            )


def _open_workbook(path: Path) -> Any:
    import openpyxl

    try:
        with warnings.catch_warnings():
            # Real exports carry features openpyxl skips (data validation, slicers); fine.
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
            # openpyxl judges by the name; a workbook saved as .csv is handed over as bytes.
            src: Any = (
                path if path.suffix.lower() in (".xlsx", ".xlsm") else io.BytesIO(path.read_bytes())
            )
            return openpyxl.load_workbook(src, read_only=True, data_only=True)
    except Exception as exc:
        raise FatalError(f"{path}: not a readable .xlsx workbook ({exc})") from None


def _sheet(wb: Any, name: str | None, path: Path) -> Any:
    if name is None:
        return wb.worksheets[0]
    if name not in wb.sheetnames:
        raise FatalError(f"{path}: no sheet {name!r} (sheets: {', '.join(wb.sheetnames)})")
    return wb[name]


def xlsx_row_count(path: Path) -> int | None:
    """The first sheet's data rows from its ``<dimension ref="A1:K501">``, for a progress
    bar: read from the zip directly, since loading openpyxl and the workbook costs a second
    of CPU even when the file is unchanged and never read. None when the sheet says nothing."""
    try:
        with zipfile.ZipFile(path) as zf:
            part = _first_sheet_part(zf)
            if part is None:
                return None
            with zf.open(part) as fh:
                head = fh.read(_DIMENSION_HEAD).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile, KeyError):
        return None
    m = _DIMENSION.search(head)
    if m is None:
        return None
    return max(int(m.group(1)) - 1, 0)


_DIMENSION_HEAD = 4096
_DIMENSION = re.compile(
    r'<(?:\w+:)?dimension\s+ref="[A-Z]{1,3}[0-9]{1,7}(?::[A-Z]{1,3}([0-9]{1,7}))?"'
)
_FIRST_SHEET = re.compile(r'<(?:\w+:)?sheet\b[^>]{0,2000}?\br:id="([^"]{1,200})"')
_RELATIONSHIP = re.compile(r"<Relationship\b[^>]{0,2000}>")


def _first_sheet_part(zf: zipfile.ZipFile) -> str | None:
    """The zip member of the workbook's first sheet (workbook.xml, then its relationships)."""
    book = zf.read("xl/workbook.xml")[: 1 << 20].decode("utf-8", "replace")
    m = _FIRST_SHEET.search(book)
    if m is None:
        return None
    rels = zf.read("xl/_rels/workbook.xml.rels")[: 1 << 20].decode("utf-8", "replace")
    for rel in _RELATIONSHIP.findall(rels):
        if f'Id="{m.group(1)}"' in rel:
            target = re.search(r'Target="([^"]{1,500})"', rel)
            if target is None:
                return None
            t = target.group(1)
            return t.lstrip("/") if t.startswith("/") else f"xl/{t}"
    return None


def xlsx_rows(path: Path, sheet: str | None) -> Iterator[Row]:
    wb = _open_workbook(path)
    try:
        ws = _sheet(wb, sheet, path)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
            for n, values in enumerate(ws.iter_rows(values_only=True), 1):
                cells = [_cell_text(v) for v in values]
                while cells and cells[-1] == "":
                    cells.pop()
                yield (n, cells, None, None, True, None)
    finally:
        wb.close()
