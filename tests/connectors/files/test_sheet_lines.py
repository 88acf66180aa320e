"""Reading a text export as bytes first (``connectors.files.sheet_lines``): the rows it gives
equal the exact ``csv`` reader's, and rows the store holds are skipped without decoding."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.files import sheet_lines
from connectors.files.sheet_encoding import TextFormat
from connectors.files.sheet_rows import csv_rows

HEADER = "顧客ID,会社名,氏名\r\n"
FMT = TextFormat("cp932", ",", detected=False)


class Known:
    """Holds the digests of some rows; records what was claimed."""

    def __init__(self, digests: Sequence[bytes] = ()) -> None:
        self.digests = list(digests)
        self.taken: list[int] = []

    def find(self, digests: Sequence[bytes]) -> list[int]:
        return [
            self.digests.index(d)
            if d in self.digests and self.digests.index(d) not in self.taken
            else -1
            for d in digests
        ]

    def take(self, entries: Sequence[int]) -> None:
        self.taken.extend(entries)


def _rows(
    path: Path, known: Known, salt: bytes = b"s", limit: int = 32_767, keyed: bool = True
) -> list[Any]:
    return list(sheet_lines.hashed_rows(path, FMT, known, salt, limit, lambda cells: keyed))


def _plain(path: Path) -> list[tuple[object, ...]]:
    fmt = FMT
    return [r[:3] for r in csv_rows(path, fmt)]


MESSY = [
    b"C1,plain,row\r\n",
    b'C2,"quoted, with comma","and ""doubled"" quotes"\r\n',
    b'C3,"two\r\nlines",x\r\n',
    b"\r\n",  # blank line
]
BARE_CR = b'C4,bare cr\rC5,after cr,y\r\nC6,"lone\rcr inside",z\r\n'
"""A lone CR ends a line, as ``open(newline="")`` reads it. (The plain reader alone reads it
as a broken row when the same megabyte also holds an undecodable byte; that case is left out.)"""


@pytest.mark.parametrize(
    "tail",
    [
        b"",
        b"C7,no newline at the end",
        b'C7,stray"quote,x\r\nC8,after,it\r\n',  # csv reads the quote literally
        b'C7,a"b,"c\r\nC8,d,e\r\n',  # an even count, yet csv joins the lines
        b"C7,nul\x00byte,x\r\nC8,after,it\r\n",
        b"C7,\x81\x20bad cp932,x\r\nC8,after,it\r\n",
        b'C7,"never closed,x\r\nC8,after,it\r\n',
    ],
)
def test_rows_equal_the_exact_reader(tmp_path: Path, tail: bytes) -> None:
    """Nothing known: every row decoded, line numbers, cells and problems as ``csv_rows``
    gives them, whatever the file does wrong (the reader hands over to ``csv_rows``)."""
    f = tmp_path / "x.csv"
    cr = b"" if b"\x81" in tail else BARE_CR
    f.write_bytes(HEADER.encode("cp932") + b"".join(MESSY) + cr + tail)
    got = _rows(f, Known())
    assert [r[:3] for r in got] == _plain(f)
    assert all(r[5] is None for r in got[:1])  # the header carries no digest
    assert all(r[5] is not None for r in got[1:4])  # rows read as bytes carry theirs


def test_known_rows_are_skipped_and_claimed_once(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    body = [b"C1,a,b\r\n", b'C2,"x,y",c\r\n', b"C3,d,e\r\n", b"C1,a,b\r\n"]
    f.write_bytes(HEADER.encode("cp932") + b"".join(body))
    first = _rows(f, Known())
    digests = [bytes.fromhex(str(r[5])) for r in first[1:]]
    known = Known(digests[:2])  # C1 and C2 stored as they are now
    got = _rows(f, known)
    assert got[1] == 2  # C1 and C2 skipped undecoded: one count for the run
    assert got[2][:2] == (4, ["C3", "d", "e"])  # line numbers count the skipped lines
    assert got[3][:2] == (5, ["C1", "a", "b"])  # the repeat of a skipped line is decoded
    assert known.taken == [0, 1]
    # Another salt (a new mapping or header) matches nothing.
    assert all(r[1] is not None for r in _rows(f, Known(digests), salt=b"other"))


def test_a_row_longer_than_the_cell_limit_is_decoded(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_bytes(HEADER.encode("cp932") + b"C1," + b"a" * 50 + b",b\r\n")
    (_, row) = _rows(f, Known(), limit=20)
    known = Known([bytes.fromhex(str(row[5]))])
    got = _rows(f, known, limit=20)
    assert got[1][1] is not None and known.taken == []


def test_keyless_file_goes_to_the_plain_reader(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_bytes(b"a,b\r\n1,2\r\n1,2\r\n")
    got = _rows(f, Known(), keyed=False)
    assert [r[1] for r in got] == [["a", "b"], ["1", "2"], ["1", "2"]]
    assert all(r[5] is None for r in got)


def test_record_check_is_linear_on_hostile_quotes() -> None:
    match = sheet_lines._well_formed(",").match
    for body in (b'"' * 200_001, b'"' + b'""' * 100_000 + b"x", (b'"a",' * 50_000) + b'"'):
        t0 = time.perf_counter()
        match(body)
        assert time.perf_counter() - t0 < 1.0


def test_digest_is_keyed_by_salt_and_header(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_bytes(HEADER.encode("cp932") + b"C1,a,b\r\n")
    (_, row) = _rows(f, Known())
    key = hashlib.blake2b(b"s\x00" + HEADER.encode("cp932"), digest_size=32).digest()
    assert row[5] == hashlib.blake2b(b"C1,a,b\r\n", digest_size=16, key=key).hexdigest()


def _expand(rows: list[Any]) -> list[Any]:
    """Runs of skipped rows (counts) as one ``None`` per row."""
    out: list[Any] = []
    for r in rows:
        out.extend([None] * r if isinstance(r, int) else [r])
    return out


@pytest.mark.parametrize("block", [16, 64, 1 << 20])
@pytest.mark.parametrize(
    "tail",
    [b"", b'C7,"never closed,x\r\nC8,after,it\r\n', b"C7,\x81\x20bad,x\r\nC8,after,it\r\n"],
)
def test_skipped_runs_and_decoded_rows_add_up_to_the_exact_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, tail: bytes
) -> None:
    """Every other record known: the decoded rows are the exact reader's rows at the same
    places (line numbers past multi-line records and runs included), each known record is
    one skipped row, and block boundaries anywhere change nothing."""
    monkeypatch.setattr(sheet_lines, "_BLOCK", block)
    f = tmp_path / "x.csv"
    body = b"".join(MESSY) + b"".join(b"C%d,r%d,x\r\n" % (i, i) for i in range(10, 30)) + tail
    f.write_bytes(HEADER.encode("cp932") + body + MESSY[2])
    plain = _plain(f)
    first = _rows(f, Known())
    assert [r[:3] for r in first] == plain
    digests = [bytes.fromhex(r[5]) for r in first if r[5] is not None]
    known = Known(digests[::2])
    got = _expand(_rows(f, known))
    assert len(got) == len(plain)
    skipped = [i for i, r in enumerate(got) if r is None]
    assert len(skipped) == len(known.taken) == len(set(known.taken)) == len(set(digests[::2]))
    assert all(got[i][:3] == plain[i] for i in range(len(got)) if got[i] is not None)
