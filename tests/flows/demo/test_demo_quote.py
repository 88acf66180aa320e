"""What `kizuna demo` does after its sync for quotes: one 見積書 for deal D-0001 from the
generated line-items sheet, its PDF path printed; a rerun shows the same quote, not a new one."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from flows import config
from flows.cli.quotes import demo_quote as print_demo_quote
from flows.demo.generate import generate_with_counts
from flows.demo.quotes import QUOTE_DEAL, demo_quote
from flows.engine import run_stream
from flows.sources import registry
from warehouse.db import open_warehouse


def test_the_demo_quotes_one_deal_and_prints_its_pdf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws_file, made = generate_with_counts(tmp_path / "demo", messages=20, seed=3)
    ws = config.load(ws_file)
    engine = open_warehouse(ws.warehouse_url)
    for name in ("deals", "deal_lines"):
        for spec in registry.streams(ws, name):
            res = run_stream(engine, spec, uuid.uuid4().hex)
            if name == "deal_lines":
                assert res.stats.inserted == made.deal_lines and not res.stats.quarantined
    engine.dispose()

    print_demo_quote(ws_file)
    out = capsys.readouterr().out
    doc = demo_quote(ws_file)  # the second time: the quote already issued
    assert doc is not None and doc["revision"] == 1
    assert f"見積書 {doc['number']}" in out and doc["files"]["pdf"] in "".join(out.split())
    assert Path(doc["files"]["pdf"]).read_bytes().startswith(b"%PDF")
    assert len(list((ws_file.parent / "quotes").glob("*.pdf"))) == 1

    rows = csv.DictReader(io.StringIO((ws_file.parent / "data/deal_lines.csv").read_text("cp932")))
    want = sum(
        Decimal(r["数量"]) * Decimal(r["単価"].replace(",", ""))
        for r in rows
        if r["案件ID"] == QUOTE_DEAL
    )
    assert doc["total"] > want  # 税抜 lines plus their tax
    with open_warehouse(ws.warehouse_url).connect() as conn:
        from warehouse.quotes.documents import history

        (row,) = history(conn)
    assert row["number"] == doc["number"]
