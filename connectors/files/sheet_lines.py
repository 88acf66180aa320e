"""A text export read as bytes first, so the rows a store already holds are skipped undecoded.

A re-read export is mostly the rows the last pass stored. Here each record's raw bytes are
hashed (keyed by the stream's salt and the header line) and looked up among the hashes the
store held when the pass began (``connectors.page.KnownHashes``); only records not found are
decoded and parsed, in bulk. A 1 % change then costs a split, a hash and a vectorised lookup
per unchanged row instead of a decode, a dict and a database probe; the rows found come out
as one count per run (:data:`sheet_rows.Skipped`), not a tuple each.

Records are found the way ``csv`` finds them in a well-formed file: lines split at CR, LF or
CRLF (as ``open(newline="")`` splits them), joined while a quote is open. That holds for the
encodings read here (UTF-8, cp932, EUC-JP: quote, delimiter, CR and LF bytes are never part
of a multi-byte character), not for UTF-16, which keeps the plain reader. A record the
grouping cannot vouch for (a quote inside a field, a quote still open at the end, a NUL, a
byte the encoding rejects) hands the rest of the file, from that record's first byte, to the
exact reader (:func:`sheet_rows.csv_rows`): a malformed file reads exactly as before, only
without the shortcut from there on.

Only records *not* found need vouching: a stored digest is always of a record that was
vouched and decoded when it was stored, and vouching depends on a record's bytes alone, so
equal bytes vouch alike. The grouping itself is still done for every line (record
boundaries depend on what came before), in C when no line leaves a quote open.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from functools import lru_cache, partial
from itertools import accumulate, repeat
from operator import and_
from pathlib import Path
from typing import Any

from connectors.files.sheet_encoding import TextFormat
from connectors.files.sheet_rows import Row, Skipped, csv_rows
from connectors.page import KnownHashes

_BLOCK = 1 << 20
_BOM = b"\xef\xbb\xbf"
DIGEST_SIZE = 16


def _keyed_digest(fresh: Callable[[], Any], rec: bytes) -> bytes:
    """The keyed BLAKE2b digest of one record, from a copy of a state that already holds
    the key: a keyed constructor compresses the key's block again for every record (~20 %
    of hashing a short record)."""
    h = fresh()
    h.update(rec)
    digest: bytes = h.digest()
    return digest


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
    if not quoted or not any(map(and_, map(bytes.count, lines, repeat(b'"')), repeat(1))):
        return lines, {}, b""  # no line leaves a quote open: every line is a record
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


class _Reader:
    """The state of one file's read: where the next record starts, in bytes and lines."""

    def __init__(self, path: Path, fmt: TextFormat, known: KnownHashes, max_len: int) -> None:
        self.path, self.fmt, self.known, self.max_len = path, fmt, known, max_len
        self.codec = "utf-8" if fmt.encoding == "utf-8-sig" else fmt.encoding
        self.delim = fmt.delimiter
        self.vouch = _well_formed(self.delim).match
        self.line = 0  # physical lines handed out
        self.offset = 0  # file offset of the next record
        self.hasher: Callable[[bytes], bytes] | None = None

    def good(self, rec: bytes) -> bool:
        """Whether the grouping can vouch for this record (see the module docstring)."""
        if b"\x00" in rec:
            return False
        return b'"' not in rec or self.vouch(rec) is not None

    def header(
        self,
        recs: list[bytes],
        multi: dict[int, int],
        salt: bytes,
        keyed: Callable[[list[str]], bool],
    ) -> Iterator[Row | Skipped]:
        """The records up to and including the header; sets ``hasher`` once it is found
        (or hands the file to the plain reader); ``recs`` loses what was consumed."""
        while recs and self.hasher is None:
            rec = recs[0]
            if not self.good(rec) or multi.get(0, 1) == 0:
                return
            try:
                (cells,) = _parse(rec.decode(self.codec), self.delim) or [[]]
            except (UnicodeDecodeError, csv.Error, ValueError):
                return
            yield (self.line + 1, cells, None, None, False, None)
            self.line += multi.get(0, 1)
            self.offset += len(rec)
            del recs[0]
            shifted = {j - 1: n for j, n in multi.items() if j}
            multi.clear()
            multi.update(shifted)
            if any(c.strip() for c in cells):
                if not keyed(cells):
                    raise _Plain
                key = hashlib.blake2b(salt + b"\x00" + rec, digest_size=32).digest()
                self.hasher = partial(
                    _keyed_digest, hashlib.blake2b(digest_size=DIGEST_SIZE, key=key).copy
                )

    def body(self, recs: list[bytes], multi: dict[int, int]) -> Iterator[Row | Skipped]:
        """The records of a block after the header: runs of skipped ones as counts, the rest
        decoded with their digest. Raises ``_Handover`` after the last record it could
        vouch for (``line`` and ``offset`` then point at the next)."""
        assert self.hasher is not None
        digests: list[bytes] = list(map(self.hasher, recs))
        found = self.known.find(digests)
        n = len(recs)
        hits = n - found.count(-1)
        uniq = set(found)
        uniq.discard(-1)
        if len(uniq) == hits and max(map(len, recs), default=0) <= self.max_len:
            emit = [j for j, e in enumerate(found) if e < 0] if hits < n else []
        else:  # a line repeated in the block, or longer than a cell may be: one by one
            uniq = set()
            emit = []
            for j, e in enumerate(found):
                if e < 0 or e in uniq or len(recs[j]) > self.max_len:
                    emit.append(j)
                else:
                    uniq.add(e)
        end = n
        for k, j in enumerate(emit):  # only records not found need vouching
            if not self.good(recs[j]) or multi.get(j, 1) == 0:
                end, emit = j, emit[:k]
                break
        parsed, ok = _decode(recs, emit, self.codec, self.delim)
        if ok < len(emit):  # a record the encoding rejects: the exact reader from it
            end, emit = emit[ok], emit[:ok]
        if end < n:  # claimed: the records before the cut that are not decoded (all found)
            decoded = set(emit)
            uniq = {found[j] for j in range(end) if j not in decoded}
        self.known.take(sorted(uniq))
        lines = _line_numbers(multi, end) if multi else None
        at = 0
        for j, cells in zip(emit, parsed, strict=True):
            if j > at:
                yield j - at
            line = self.line + (lines[j] if lines is not None else j)
            yield (line + 1, cells, None, None, False, digests[j].hex())
            at = j + 1
        if end > at:
            yield end - at
        self.line += lines[end] if lines is not None else end
        self.offset += sum(map(len, recs[:end])) if end < n else sum(map(len, recs))
        if end < n:
            raise _Handover


class _Handover(Exception):
    """The rest of the file goes to the exact reader."""


class _Plain(Exception):
    """The rows have no key column: the whole rest goes to the plain reader."""


def _line_numbers(multi: dict[int, int], end: int) -> list[int]:
    """Physical lines before each record 0..end (inclusive), given the multi-line ones."""
    return [0, *accumulate(multi.get(j, 1) for j in range(end))]


def hashed_rows(
    path: Path,
    fmt: TextFormat,
    known: KnownHashes,
    salt: bytes,
    max_cell_chars: int,
    keyed: Callable[[list[str]], bool],
) -> Iterator[Row | Skipped]:
    """The file's rows as :func:`sheet_rows.csv_rows` gives them, except that records whose
    digest ``known`` holds come out as counts of skipped rows (one int per run) and every
    decoded record after the header carries its digest (hex) as the row's last element.

    A record longer than ``max_cell_chars`` bytes is always decoded (a lower limit must still
    quarantine it). The header (the first record with a non-blank cell) is decoded as usual
    and keys every digest after it, with ``salt``; when ``keyed(header)`` says the rows have
    no key column (rows named by their content, where equal lines are distinct records), the
    rest of the file goes to the plain reader.
    """
    rd = _Reader(path, fmt, known, max_cell_chars)
    with path.open("rb") as f:
        if f.read(len(_BOM)) == _BOM:
            rd.offset = len(_BOM)
        f.seek(rd.offset)
        rest = b""
        try:
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
                recs, multi, pending = _records(head.splitlines(keepends=True), b'"' in head)
                rest = pending + block[cut:]
                if not chunk and pending:  # a quote open at the end of the file
                    multi[len(recs)] = 0
                    recs.append(pending)
                if rd.hasher is None:
                    yield from rd.header(recs, multi, salt, keyed)
                    if rd.hasher is None and recs:  # a header the grouping cannot vouch for
                        raise _Handover
                if recs:
                    yield from rd.body(recs, multi)
                if not chunk:
                    return
        except _Handover:
            pass
        except _Plain:
            yield from csv_rows(path, fmt, start=(rd.offset, rd.line))
            return
    yield from csv_rows(path, fmt, start=(rd.offset, rd.line))


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
