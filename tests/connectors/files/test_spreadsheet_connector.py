"""Reading exports as Excel and other tools write them: encodings, xlsx, broken rows."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from connectors.files import spreadsheet as s
from connectors.files.sheet_encoding import detect_encoding
from connectors.page import Page
from kizuna.errors import FatalError

HEADER = "顧客ID,会社名,氏名,メールアドレス,備考\n"
ROWS = [
    "C1,株式会社ＡＢＣ,田中　太郎,t.tanaka@abc.co.jp,①至急～確認\n",
    "C2,㈱いろは,鈴木 花子,hanako@iroha.jp,髙橋さん紹介\n",
]


def _all(path: Path, **kw: object) -> list[Page[s.SheetCursor]]:
    kw.setdefault("key_candidates", ("顧客ID",))
    return list(s.pages(path, None, **kw))  # type: ignore[arg-type]


def _records(path: Path, **kw: object) -> list[dict[str, str]]:
    return [r for p in _all(path, **kw) for r in p.records]


@pytest.mark.parametrize("encoding", ["auto", "cp932", "shift_jis"])
def test_cp932_export_with_nec_and_ibm_characters(tmp_path: Path, encoding: str) -> None:
    f = tmp_path / "sjis.csv"
    f.write_bytes((HEADER + "".join(ROWS)).replace("\n", "\r\n").encode("cp932"))
    with pytest.raises(UnicodeEncodeError):
        "①～㈱髙".encode("shift_jis")  # the strict codec cannot carry what Excel writes
    recs = _records(f, encoding=encoding)
    assert [r["備考"] for r in recs] == ["①至急～確認", "髙橋さん紹介"]
    assert recs[1]["会社名"] == "㈱いろは"
    assert detect_encoding(f) == "cp932"


def test_utf8_with_and_without_bom(tmp_path: Path) -> None:
    plain = tmp_path / "u.csv"
    bom = tmp_path / "bom.csv"
    plain.write_text(HEADER + "".join(ROWS), encoding="utf-8")
    bom.write_text(HEADER + "".join(ROWS), encoding="utf-8-sig")
    assert detect_encoding(plain) == "utf-8"
    assert detect_encoding(bom) == "utf-8-sig"
    a, b = _records(plain), _records(bom)
    assert a == b
    assert next(iter(b[0])) == "顧客ID"  # no BOM glued to the first header


def test_japanese_text_after_a_long_ascii_head_is_still_detected(tmp_path: Path) -> None:
    f = tmp_path / "late.csv"
    ascii_rows = "".join(f"A{i},ACME,John Doe,j{i}@acme.com,ok\n" for i in range(20000))
    f.write_bytes((HEADER + ascii_rows + ROWS[0]).encode("cp932"))
    assert detect_encoding(f) == "cp932"
    assert _records(f, page_size=50000)[-1]["備考"] == "①至急～確認"


def test_cjkencodings_sample_decodes_as_its_utf8_twin(tmp_path: Path) -> None:
    import sysconfig

    folder = Path(sysconfig.get_paths()["stdlib"]) / "test" / "cjkencodings"
    sjis = (folder / "shift_jis.txt").read_bytes()
    twin = (folder / "shift_jis-utf8.txt").read_bytes().decode("utf-8")
    lines = [ln for ln in sjis.split(b"\n") if ln.strip()][:5]
    body = b"".join(
        b"K%d," % i + b'"' + ln.replace(b'"', b'""') + b'"\n' for i, ln in enumerate(lines)
    )
    f = tmp_path / "cjk.csv"
    f.write_bytes("ID,text\n".encode("cp932") + body)
    got = [r["text"] for r in _records(f, key_candidates=("ID",))]
    want = [ln for ln in twin.split("\n") if ln.strip()][:5]
    assert got == want


def test_broken_rows_become_rawbad_with_their_line_and_the_rest_lands(tmp_path: Path) -> None:
    f = tmp_path / "broken.csv"
    data = (
        HEADER.encode("cp932")
        + ROWS[0].encode("cp932")
        + b"C3,too,few\n"
        + b"C4,\x82\xa0ok,\x85\x40 bad bytes,x@y.jp,\n"  # 0x85 0x40: unassigned in cp932
        + b",no key,name,k@y.jp,\n"
        + '"C5","multi\nline company",佐藤 次郎,s@z.jp,\n'.encode("cp932")
        + b"C6,a,b,c@d.jp,,extra\n"
        + b"C7,a,b,c7@d.jp,,,\n"  # trailing empty fields are harmless
        + b"\n"
    )
    f.write_bytes(data)
    pages = _all(f, encoding="cp932")
    recs = [r for p in pages for r in p.records]
    bad = [b for p in pages for b in p.bad]
    assert [r["顧客ID"] for r in recs] == ["C1", "C5", "C7"]
    assert recs[1]["会社名"] == "multi\nline company"
    reasons = {b.source_id: b.reason for b in bad}
    assert reasons["C3"].startswith("line 3: 3 fields where the header has 5")
    assert "line 4" in reasons["C4"] and "85" in reasons["C4"]
    assert reasons[None] == "line 5: empty key column '顧客ID'"
    assert reasons["C6"].startswith("line 8: 6 fields")
    # Broken rows that still name a key count as present: they must not be marked vanished.
    assert sorted(sid for p in pages for sid in p.seen) == ["C3", "C4", "C6"]
    assert pages[-1].snapshot_end and pages[-1].cursor.complete


def test_pages_are_bounded_and_only_the_last_is_complete(tmp_path: Path) -> None:
    f = tmp_path / "many.csv"
    f.write_text(HEADER + "".join(f"C{i},c,n,a{i}@b.jp,\n" for i in range(25)), encoding="utf-8")
    pages = _all(f, page_size=10)
    assert [len(p.records) for p in pages] == [10, 10, 5]
    assert [p.cursor.complete for p in pages] == [False, False, True]
    assert [p.snapshot_end for p in pages] == [False, False, True]
    assert pages[-1].cursor.rows == 25
    assert not _all(f, snapshot=False)[-1].snapshot_end


def test_unchanged_file_yields_nothing_changed_or_half_read_file_is_read(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text(HEADER + ROWS[0], encoding="utf-8")
    done = _all(f)[-1].cursor
    assert list(s.pages(f, done, key_candidates=("顧客ID",))) == []
    half = done.model_copy(update={"complete": False})
    assert len(list(s.pages(f, half, key_candidates=("顧客ID",)))) == 1
    f.write_text(HEADER + ROWS[1], encoding="utf-8")
    again = list(s.pages(f, done, key_candidates=("顧客ID",)))
    assert again[0].records[0]["顧客ID"] == "C2"
    assert again[0].cursor.sha256 != done.sha256


def test_missing_key_column_or_file_is_fatal_not_a_silent_empty_snapshot(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("会社名,氏名\nA,B\n", encoding="utf-8")
    with pytest.raises(FatalError, match="no key column"):
        _all(f)
    with pytest.raises(FatalError, match="not found"):
        _all(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(FatalError, match="no header"):
        _all(empty)


def test_key_column_matched_loosely_and_headers_made_unique(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("ＩＤ,Name,Name,\n1,a,b,c\n", encoding="utf-8")
    rec = _records(f, key_candidates=("顧客ID", "id"))[0]
    assert rec == {"ＩＤ": "1", "Name": "a", "Name_2": "b", "column_4": "c"}


def _xlsx(path: Path, rows: list[list[object]], title: str = "顧客") -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    for row in rows:
        ws.append(row)
    wb.save(path)


def test_xlsx_cells_read_as_the_text_a_person_sees(tmp_path: Path) -> None:
    f = tmp_path / "export.xlsx"
    _xlsx(
        f,
        [
            ["顧客ID", "会社名", "金額", "受注予定日", "確度", "登録日時", "備考"],
            [101, "株式会社ABC", 1200000, date(2026, 1, 5), 0.8, datetime(2026, 1, 5, 9, 30), None],
            ["C2", "いろは", "¥1,200,000", "令和8年1月5日", None, None, "①～"],
            [None, None, None, None, None, None, None],
            [None, "no key", None, None, None, None, None],
        ],
    )
    pages = _all(f, key_candidates=("顧客ID",))
    recs = [r for p in pages for r in p.records]
    assert recs[0] == {
        "顧客ID": "101",
        "会社名": "株式会社ABC",
        "金額": "1200000",
        "受注予定日": "2026-01-05",
        "確度": "0.8",
        "登録日時": "2026-01-05 09:30:00",
        "備考": "",
    }
    assert recs[1]["備考"] == "①～"
    assert [b.reason for p in pages for b in p.bad] == ["line 5: empty key column '顧客ID'"]
    assert s.estimate_rows(f) == 4


def test_xlsx_row_estimate_reads_the_first_sheets_dimension(tmp_path: Path) -> None:
    """The progress bar's row count comes from the first sheet's <dimension>, without
    openpyxl (a second of CPU on an unchanged sync); it agrees with openpyxl's max_row."""
    import openpyxl

    wb = openpyxl.Workbook()
    later = wb.active
    for i in range(3):
        later.append([i])
    first = wb.create_sheet("先頭", 0)
    for i in range(12):
        first.append([f"row {i}", i])
    f = tmp_path / "two.xlsx"
    wb.save(f)
    assert s.estimate_rows(f) == 11


def test_xlsx_sheet_by_name(tmp_path: Path) -> None:
    f = tmp_path / "two.xlsx"
    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    first.append(["x"])
    second = wb.create_sheet("案件")
    second.append(["ID", "案件名"])
    second.append(["D1", "刷新"])
    wb.save(f)
    assert _records(f, sheet="案件", key_candidates=("ID",)) == [{"ID": "D1", "案件名": "刷新"}]
    with pytest.raises(FatalError, match="no sheet"):
        _all(f, sheet="missing", key_candidates=("ID",))


def test_row_estimate_is_close_for_a_large_file(tmp_path: Path) -> None:
    f = tmp_path / "big.csv"
    f.write_text(HEADER + "".join(f"C{i},会社{i},氏名 {i},a{i}@b.jp,\n" for i in range(30000)))
    est = s.estimate_rows(f)
    assert est is not None and 27000 < est < 33000


def test_multi_megabyte_file_with_multiline_cells_and_a_bad_line_far_in(tmp_path: Path) -> None:
    f = tmp_path / "big.csv"
    rows = [f'C{i},"会社\n{i}",氏名 {i},a{i}@b.jp,①\r\n'.encode("cp932") for i in range(60000)]
    rows[50000] = b"C50000,\x85\x40,x,y@b.jp,\r\n"
    f.write_bytes(HEADER.encode("cp932") + b"".join(rows))
    assert f.stat().st_size > 2 * (1 << 20)
    pages = _all(f, page_size=5000)
    recs = [r for p in pages for r in p.records]
    bad = [b for p in pages for b in p.bad]
    assert len(recs) == 59999 and recs[-1]["会社名"] == "会社\n59999"
    assert [b.source_id for b in bad] == ["C50000"]
    assert bad[0].reason.startswith("line 100002: bytes 85 at offset 7")  # 2 lines a row
