"""A first sync's counts say what was read and what it became: five rows naming two companies
are five rows read and ten records (each contact and the company it names), explained; an
unchanged rerun reads nothing and its bars end full."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.flows.cli.support import kizuna, workspace

ROWS = """顧客ID,氏名,会社名,メール
C1,田中 太郎,株式会社ABC,t@abc.co.jp
C2,佐藤 花子,株式会社ABC,h@abc.co.jp
C3,鈴木 一郎,XYZ株式会社,s@xyz.co.jp
C4,高橋 次郎,XYZ株式会社,j@xyz.co.jp
C5,伊藤 三郎,株式会社ABC,i@abc.co.jp
"""


def _cells(output: str, label: str) -> list[str]:
    line = next(ln for ln in output.splitlines() if label in ln)
    return [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]


def test_first_sync_counts_rows_read_and_records_written(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "c.csv").write_text(ROWS, encoding="utf-8")
    ws = workspace(
        tmp_path,
        engine,
        monkeypatch,
        sources={"customers": {"type": "spreadsheet", "path": "c.csv"}},
    )
    first = kizuna("sync", "-w", str(ws))
    assert first.exit_code == 0, first.output
    header = _cells(first.output, "rows read")
    assert header[:6] == [
        "source/stream",
        "status",
        "rows read",
        "records new",
        "records updated",
        "rows unchanged",
    ]
    row = dict(zip(header, _cells(first.output, "customers/rows │"), strict=True))
    assert (row["rows read"], row["records new"], row["records updated"]) == ("5", "10", "0")
    assert "a row can make several (a contact and the company it names" in first.output

    again = kizuna("sync", "-w", str(ws))
    assert again.exit_code == 0, again.output
    row = dict(zip(header, _cells(again.output, "customers/rows │"), strict=True))
    assert (row["rows read"], row["records new"], row["records updated"]) == ("0", "0", "0")
    assert "a row can make several" not in again.output
    assert "5/5" in again.output  # the bar of a file not even read ends full


def test_resolve_and_export_show_progress(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "c.csv").write_text(ROWS, encoding="utf-8")
    ws = workspace(
        tmp_path,
        engine,
        monkeypatch,
        sources={"customers": {"type": "spreadsheet", "path": "c.csv"}},
    )
    assert kizuna("sync", "-w", str(ws)).exit_code == 0
    resolved = kizuna("identity", "resolve", "--full", "-w", str(ws))
    assert resolved.exit_code == 0, resolved.output
    assert re.search(r"identity \(full\) .* (\d+)/\1", resolved.output), resolved.output
    out = tmp_path / "crosswalk.csv"
    exported = kizuna("export", "crosswalk", "-o", str(out), "-w", str(ws))
    assert exported.exit_code == 0, exported.output
    assert re.search(r"export → crosswalk.csv .* 5/\?", exported.output), exported.output
    assert "5 rows → " in exported.output
    acts = kizuna("export", "activities", "-o", str(tmp_path / "a.jsonl"), "-w", str(ws))
    assert acts.exit_code == 0 and re.search(r"export → activities .* 0/0", acts.output), (
        acts.output
    )
