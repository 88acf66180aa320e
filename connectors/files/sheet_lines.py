"""A text export read as bytes first, so the rows a store already holds are skipped undecoded.

A re-read export is mostly the rows the last pass stored. Here each record's raw bytes are
hashed (keyed by the stream's salt and the header line) and looked up among the hashes the
store held when the pass began (``connectors.page.KnownHashes``); only records not found are
decoded and parsed, in bulk. A 1 % change then costs a split, a hash and a vectorised lookup
per unchanged row instead of a decode, a dict and a database probe.

Records are found the way ``csv`` finds them in a well-formed file: lines split at CR, LF or
CRLF (as ``open(newline="")`` splits them), joined while a quote is open. That holds for the
encodings read here (UTF-8, cp932, EUC-JP: quote, delimiter, CR and LF bytes are never part
of a multi-byte character), not for UTF-16, which keeps the plain reader. A record the
grouping cannot vouch for (a quote inside a field, a quote still open at the end, a NUL, a
byte the encoding rejects) hands the rest of the file, from that record's first byte, to the
exact reader (:func:`sheet_rows.csv_rows`): a malformed file reads exactly as before, only
without the shortcut from there on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

from connectors.files.sheet_encoding import TextFormat
from connectors.files.sheet_rows import Row, csv_rows
from connectors.page import KnownHashes

_BLOCK = 1 << 20
_BOM = b"\xef\xbb\xbf"
DIGEST_SIZE = 16


def supported(fmt: TextFormat) -> bool:
    """Whether records can be cut from raw bytes in this encoding (not UTF-16)."""
    return not fmt.encoding.lower().startswith("utf-16")


@lru_cache(maxsize=8)
def _well_formed(delimiter: str) -> re.Pattern[bytes]:
    """One record that ``csv`` reads exactly as the grouping cut it: fields plain (no quote,
    delimiter, CR, LF or NUL) or wholly quoted with doubled inner quotes, one line ending
    at most. Each alternative starts with a different byte, so matching is linear."""
    d = re.escape(delimiter.encode())
    plain = b'[^"' + d + rb"\r\n\x00]*"
    quoted = rb'"(?:[^"\x00]|"")*"'
    field = b"(?:" + quoted + b"|" + plain + b")"
    return re.compile(field + b"(?:" + d + field + rb")*(?:\r\n|\n|\r)?\Z")


def _records(lines: list[bytes], quoted: bool) -> tuple[list[bytes], dict[int, int], bytes]:
    """Lines grouped into records; the physical lines of each multi-line record (by index;
    every other record is one line); and the lines of a record still open at the end (its
    quote not yet closed), to be read again with the next block. ``quoted``: whether the
    block holds a quote at all (without one, every line is a record)."""
    if not quoted:
        return lines, {}, b""
    out: list[bytes] = []
    multi: dict[int, int] = {}
    open_: list[bytes] = []
    quotes = 0
    for ln in lines:
        if open_:
            open_.append(ln)
            quotes += ln.count(b'"')
            if not quotes & 1:
                multi[len(out)] = len(open_)
                out.append(b"".join(open_))
                open_ = []
        elif b'"' not in ln:
            out.append(ln)
        else:
            quotes = ln.count(b'"')
            if quotes & 1:
                open_ = [ln]
            else:
                out.append(ln)
    return out, multi, b"".join(open_)


def _parse(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def hashed_rows(
    path: Path,
    fmt: TextFormat,
    known: KnownHashes,
    salt: bytes,
    max_cell_chars: int,
    keyed: Callable[[list[str]], bool],
) -> Iterator[Row]:
    """The file's rows as :func:`sheet_rows.csv_rows` gives them, except that a record whose
    digest ``known`` holds comes out as a skipped row (cells and problem None) and every
    decoded record after the header carries its digest (hex) as the row's last element.

    A record longer than ``max_cell_chars`` bytes is always decoded (a lower limit must still
    quarantine it). The header (the first record with a non-blank cell) is decoded as usual
    and keys every digest after it, with ``salt``; when ``keyed(header)`` says the rows have
    no key column (rows named by their content, where equal lines are distinct records), the
    rest of the file goes to the plain reader.
    """
    codec = "utf-8" if fmt.encoding == "utf-8-sig" else fmt.encoding
    delim = fmt.delimiter
    vouch = _well_formed(delim).match
    key: bytes | None = None
    line = 0  # physical lines handed out
    offset = 0  # file offset of the next record
    with path.open("rb") as f:
        if f.read(len(_BOM)) == _BOM:
            offset = len(_BOM)
        f.seek(offset)
        rest = b""
        while True:
            chunk = f.read(_BLOCK)
            block = rest + chunk
            if not block:
                return
            cut = len(block) if not chunk else block.rfind(b"\n") + 1
            if cut == 0:
                rest = block
                continue
            head = block[:cut]
            quoted = b'"' in head
            recs, multi, pending = _records(head.splitlines(keepends=True), quoted)
            rest = pending + block[cut:]
            if not chunk and pending:  # a quote open at the end of the file
                multi[len(recs)] = 0
                recs.append(pending)
            stop = _vouched(recs, multi, quoted and vouch, b"\x00" in head)
            i = 0
            while key is None and i < stop:  # the header, decoded like any row
                rec = recs[i]
                try:
                    (cells,) = _parse(rec.decode(codec), delim) or [[]]
                except (UnicodeDecodeError, csv.Error, ValueError):
                    stop = i
                    break
                yield (line + 1, cells, None, None, False, None)
                line += multi.get(i, 1)
                offset += len(rec)
                i += 1
                if any(c.strip() for c in cells):
                    if not keyed(cells):
                        yield from csv_rows(path, fmt, start=(offset, line))
                        return
                    key = hashlib.blake2b(salt + b"\x00" + rec, digest_size=32).digest()
            if key is not None and i < stop:
                body = recs[i:stop]
                digests = [
                    hashlib.blake2b(rec, digest_size=DIGEST_SIZE, key=key).digest() for rec in body
                ]
                found = known.find(digests)
                claimed: set[int] = set()
                emit: list[int] = []
                for j, e in enumerate(found):
                    if e < 0 or e in claimed or len(body[j]) > max_cell_chars:
                        emit.append(j)
                    else:
                        claimed.add(e)
                parsed, good = _decode(body, emit, codec, delim)
                if good < len(emit):  # a record the encoding rejects: the exact reader from it
                    stop = i + emit[good]
                    body = body[: emit[good]]
                    emit = emit[:good]
                    decoded = set(emit)
                    claimed = {found[j] for j in range(len(body)) if j not in decoded}
                known.take(sorted(claimed))
                cells_of = dict(zip(emit, parsed, strict=True))
                for j, rec in enumerate(body):
                    got = cells_of.get(j)
                    if got is None:
                        yield (line + 1, None, None, None, False, None)
                    else:
                        yield (line + 1, got, None, None, False, digests[j].hex())
                    line += multi.get(i + j, 1) if multi else 1
                    offset += len(rec)
            if stop < len(recs):
                yield from csv_rows(path, fmt, start=(offset, line))
                return
            if not chunk:
                return


def _vouched(
    recs: list[bytes],
    multi: dict[int, int],
    vouch: Callable[[bytes], object] | bool,
    nul: bool,
) -> int:
    """How many records from the start of a block the grouping can vouch for: up to the
    first with a NUL, an unclosed quote (``multi`` says 0 lines) or a quote ``csv`` would
    read differently (``vouch`` fails; False: the block holds no quote)."""
    for j, rec in enumerate(recs):
        if (nul and b"\x00" in rec) or multi.get(j, 1) == 0:
            return j
        if vouch and b'"' in rec and not vouch(rec):  # type: ignore[operator]
            return j
    return len(recs)


def _decode(
    body: list[bytes], emit: list[int], codec: str, delim: str
) -> tuple[list[list[str]], int]:
    """Cells of the records ``emit`` names, and how many of them decoded (all, or up to the
    first the encoding or ``csv`` rejects). One decode and one parse for the lot."""
    if not emit:
        return [], 0
    try:
        rows = _parse(b"".join(body[j] for j in emit).decode(codec), delim)
        if len(rows) == len(emit):
            return rows, len(emit)
    except (UnicodeDecodeError, csv.Error):
        pass
    rows = []
    for j in emit:
        try:
            got = _parse(body[j].decode(codec), delim)
        except (UnicodeDecodeError, csv.Error):
            break
        if len(got) != 1:
            break
        rows.append(got[0])
    return rows, len(rows)


__all__ = ["DIGEST_SIZE", "hashed_rows", "supported"]
