"""Exports as they come: EUC-JP, UTF-16 with tabs, binary files refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.files import spreadsheet as s
from connectors.files.sheet_encoding import detect_encoding, resolve
from kizuna.errors import FatalError

TEXT = "顧客ID,会社名,氏名,担当者,都道府県\nC1,株式会社いろは,田中太郎,sato@ours.co.jp,東京都\n"


def _records(path: Path, **kw: object) -> list[dict[str, str]]:
    kw.setdefault("key_candidates", ("顧客ID",))
    return [r for p in s.pages(path, None, **kw) for r in p.records]  # type: ignore[arg-type]


def test_euc_jp_is_detected_not_misread_as_cp932(tmp_path: Path) -> None:
    f = tmp_path / "euc.csv"
    f.write_bytes(TEXT.encode("euc-jp"))
    assert detect_encoding(f) == "euc-jp"
    assert _records(f)[0]["会社名"] == "株式会社いろは"


def test_excel_unicode_text_is_utf16_with_tabs(tmp_path: Path) -> None:
    f = tmp_path / "unicode.txt"
    f.write_bytes(TEXT.replace(",", "\t").replace("\n", "\r\n").encode("utf-16"))
    fmt = resolve(f, "auto")
    assert (fmt.encoding, fmt.delimiter) == ("utf-16", "\t")
    assert "utf-16 (detected), tab-separated" in fmt.describe()
    assert _records(f) == [
        {
            "顧客ID": "C1",
            "会社名": "株式会社いろは",
            "氏名": "田中太郎",
            "担当者": "sato@ours.co.jp",
            "都道府県": "東京都",
        }
    ]


def test_utf16_without_bom_and_tsv_by_name(tmp_path: Path) -> None:
    f = tmp_path / "nobom.tsv"
    f.write_bytes(TEXT.replace(",", "\t").encode("utf-16-le"))
    assert detect_encoding(f) == "utf-16-le"
    assert _records(f)[0]["都道府県"] == "東京都"


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"%PDF-1.7\n\x00\x01\x02\x1b[31m", "PDF"),
        (b"\x7fELF\x02\x01\x01\x00\x1b[2J\x1b]0;pwned\x07" * 50, "control bytes"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls"),
    ],
)
def test_binary_input_is_refused_in_one_line(tmp_path: Path, data: bytes, what: str) -> None:
    f = tmp_path / "customers.csv"
    f.write_bytes(data)
    with pytest.raises(FatalError) as err:
        _records(f)
    msg = str(err.value)
    assert what in msg and "\n" not in msg and "\x1b" not in msg and "pwned" not in msg


def test_garbled_headers_name_the_encoding_and_the_override(tmp_path: Path) -> None:
    f = tmp_path / "euc.csv"
    f.write_bytes(TEXT.encode("euc-jp"))
    with pytest.raises(FatalError) as err:
        _records(f, encoding="cp932")
    msg = str(err.value)
    assert "read as cp932 (from `encoding:`)" in msg and "set `encoding:`" in msg


def test_workbook_under_a_csv_name_is_read_as_a_workbook(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["顧客ID", "会社名"])
    ws.append(["C1", "いろは"])
    f = tmp_path / "export.csv"
    wb.save(f)
    assert _records(f) == [{"顧客ID": "C1", "会社名": "いろは"}]
