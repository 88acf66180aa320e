"""Work limits on spreadsheet exports (issue 16): a small .xlsx that inflates to gigabytes is
refused from its zip directory alone, and an over-long cell quarantines its row."""

from __future__ import annotations

import resource
import time
import zipfile
from pathlib import Path

import openpyxl

from connectors.files import spreadsheet as s


def _bomb(path: Path) -> None:
    """A real workbook whose shared strings part inflates to 1 GiB of zeros (~1 MB zipped)."""
    wb = openpyxl.Workbook()
    wb.active.append(["顧客ID", "会社名"])  # type: ignore[union-attr]
    wb.active.append(["C1", "株式会社ABC"])  # type: ignore[union-attr]
    wb.save(path)
    chunk = b"0" * (1 << 20)
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z,
        z.open("xl/padding.xml", "w", force_zip64=True) as f,
    ):
        for _ in range(1024):
            f.write(chunk)


def test_a_decompression_bomb_is_quarantined_without_inflating(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xlsx"
    _bomb(bomb)
    assert bomb.stat().st_size < 2 << 20
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    pages = list(s.pages(bomb, None, key_candidates=("顧客ID",)))
    assert s.estimate_rows(bomb) is None
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100_000  # KiB
    ((bad,),) = [p.bad for p in pages]
    assert not any(p.records for p in pages) and not any(p.snapshot_end for p in pages)
    assert bad.path == str(bomb)
    assert "uncompressed" in bad.reason or "bomb" in bad.reason


def test_a_small_limit_refuses_a_normal_workbook(tmp_path: Path) -> None:
    f = tmp_path / "ok.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["顧客ID", "会社名"])  # type: ignore[union-attr]
    wb.active.append(["C1", "株式会社ABC"])  # type: ignore[union-attr]
    wb.save(f)
    assert [r for p in s.pages(f, None, key_candidates=("顧客ID",)) for r in p.records]
    (page,) = s.pages(f, None, key_candidates=("顧客ID",), max_xlsx_bytes=100)
    assert "over the limit of 100" in page.bad[0].reason


def test_an_over_long_cell_quarantines_its_row(tmp_path: Path) -> None:
    f = tmp_path / "long.csv"
    f.write_text(f"顧客ID,備考\nC1,short\nC2,{'x' * 50_000}\nC3,fine\n", encoding="utf-8")
    pages = list(s.pages(f, None, key_candidates=("顧客ID",), max_cell_chars=1000))
    assert [r["顧客ID"] for p in pages for r in p.records] == ["C1", "C3"]
    (bad,) = [b for p in pages for b in p.bad]
    assert bad.source_id == "C2" and "50,000 characters" in bad.reason
    assert bad.path == f"{f}#line3" and bad.payload is not None and len(bad.payload) < 500
