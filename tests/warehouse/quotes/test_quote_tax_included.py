"""税込 price lists: the tax is back-computed from the 税込 total once per rate per document
(never per line), and a document mixing 税込 and 税抜 prices is stated 税抜."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from flows.quotes import render
from flows.workspace import Company, Workspace
from tests.support.quotes_seed import sync_sheet, write_csv
from warehouse.quotes import documents
from warehouse.quotes.tax import Line, compute

D = Decimal


def incl(price: int | str, qty: int | str = 1, rate: int = 10) -> Line:
    return Line("x", D(qty), D(price), rate, tax_included=True)


def test_tax_is_back_computed_once_per_rate_not_per_line() -> None:
    # Two ¥105 lines: per line 105×10/110 = 9.54 → 9 each (18); once for the rate: 210/11 → 19.
    t = compute([incl(105), incl(105)])
    assert t.tax_included
    (rt,) = t.by_rate
    assert (rt.gross, rt.tax, rt.base) == (D(210), D(19), D(191))
    assert (t.subtotal, t.tax, t.total) == (D(191), D(19), D(210))


@pytest.mark.parametrize(("mode", "tax"), [("floor", 181), ("ceil", 182), ("half_up", 182)])
def test_rounding_modes_on_the_tax_inside_a_total(mode: str, tax: int) -> None:
    t = compute([incl(1999)], mode)  # type: ignore[arg-type]
    assert (t.by_rate[0].tax, t.subtotal, t.total) == (D(tax), D(1999 - tax), D(1999))


def test_mixed_rates_are_kept_apart_and_the_total_is_what_the_prices_say() -> None:
    t = compute([incl(1100, 3), incl(1080, 2, 8), incl(999, 1, 8), incl(-550), incl(3000, 1, 0)])
    assert [(r.rate, r.gross, r.tax, r.base) for r in t.by_rate] == [
        (10, D(2750), D(250), D(2500)),
        (8, D(3159), D(234), D(2925)),  # 3159 × 8/108 = 234.0
        (0, D(3000), D(0), D(3000)),
    ]
    assert t.total == D(3300 + 2160 + 999 - 550 + 3000) == t.subtotal + t.tax


def test_a_mixed_document_is_stated_tax_exclusive() -> None:
    # ¥1,000 税込 restated: 909.09 → 909 (a price); the tax is still one rounding per rate.
    t = compute([incl(1000), Line("y", D(1), D(1000), 10)])
    assert not t.tax_included
    assert [p.amount for p in t.lines] == [D(909), D(1000)]
    assert t.lines[0].unit_price == D("909.09")
    assert (t.by_rate[0].base, t.by_rate[0].tax, t.total) == (D(1909), D(190), D(2099))


def test_a_tax_included_price_list_from_a_sheet(engine: Engine, tmp_path: Path) -> None:
    ws = Workspace(company=Company(name="自社"), path=tmp_path / "kizuna.yaml")
    write_csv(tmp_path / "products.csv", [
        ["商品コード", "商品名", "税込単価", "税率"],
        ["P1", "コーヒー豆", "1,296", "8%"],
        ["P2", "ミル", "5,500", "10%"],
    ])  # fmt: skip
    write_csv(tmp_path / "lines.csv", [
        ["明細ID", "案件ID", "商品コード", "数量"], ["L1", "D1", "P1", "3"], ["L2", "D1", "P2", "1"],
    ])  # fmt: skip
    write_csv(
        tmp_path / "deals.csv", [["顧客ID", "会社名", "案件名"], ["D1", "喫茶あおい", "開店準備"]]
    )
    sync_sheet(engine, ws, "products", "products.csv", key="商品コード")
    sync_sheet(engine, ws, "lines", "lines.csv", key="明細ID")
    sync_sheet(engine, ws, "deals", "deals.csv")
    seller = {"name": "自社", "address": "", "phone": "", "registration_number": "T7000012050002"}
    s = documents.Settings(seller=seller)
    doc = documents.issue(engine, "開店準備", s, date(2026, 12, 3))
    assert doc["tax_included"] is True
    # 10%: 5,500 → tax 500, 税抜 5,000; 8%: 3,888 → 3,888 × 8/108 = 288, 税抜 3,600.
    assert [(x["rate"], x["gross"], x["tax"], x["base"]) for x in doc["by_rate"]] == [
        (10, "5500", "500", "5000"),
        (8, "3888", "288", "3600"),
    ]
    assert (doc["subtotal"], doc["tax"], doc["total"]) == ("8600", "788", "9388")
    page = "".join(render.html(doc).split())
    assert "10%対象(税込)" in page.replace("（", "(").replace("）", ")")
    assert "¥5,500内消費税¥500" in page and "¥3,888内消費税¥288" in page
    assert "小計（税抜）</th><td>¥8,600" in page and "単価（税込）" in page
