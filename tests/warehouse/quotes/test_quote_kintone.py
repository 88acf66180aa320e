"""kintone's product app and a deal app's 明細 table (SUBTABLE) into a quote, through the
real kintone source on the respx fake (kintone's record and table shapes); both databases."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from flows.engine import run_stream
from flows.sources.crm import kintone as src
from flows.workspace import Company, Workspace
from kizuna.errors import BadRecord
from mappings.crm import kintone as m
from mappings.crm.common import MapOptions
from tests.support.fakes.fake_kintone import BASE, FakeKintone
from warehouse import schema as t
from warehouse.quotes import documents
from warehouse.quotes import schema as q

PRODUCTS, DEALS = 21, 22
SELLER = {"name": "株式会社サンプル", "registration_number": "T7000012050002"}


def row(rid: str, **cells: tuple[str, str]) -> dict[str, Any]:
    """One row of a SUBTABLE as kintone returns it: an id and typed cells."""
    return {"id": rid, "value": {k: {"type": t_, "value": v} for k, (t_, v) in cells.items()}}


def _lines(*rows: tuple[str, str, str, str]) -> list[dict[str, Any]]:
    return [
        row(
            rid, 商品コード=("SINGLE_LINE_TEXT", code), 数量=("NUMBER", qty), 単価=("NUMBER", price)
        )
        for rid, code, qty, price in rows
    ]


def _setup(tmp_path: Path) -> tuple[FakeKintone, Workspace, src.Config]:
    fake = FakeKintone()
    fake.app(PRODUCTS, {"商品コード": "SINGLE_LINE_TEXT", "単価": "NUMBER", "税率": "DROP_DOWN"})
    fake.app(
        DEALS, {"案件名": "SINGLE_LINE_TEXT", "会社名": "SINGLE_LINE_TEXT", "明細": "SUBTABLE"}
    )
    fake.add(PRODUCTS, {"商品コード": "KT-1", "商品名": "保守契約", "単価": "55000", "税率": "10%"})
    fake.add(PRODUCTS, {"商品コード": "KT-2", "商品名": "弁当", "単価": "1080", "税率": "8%"})
    fake.add(
        DEALS,
        {
            "案件名": "保守更新",
            "会社名": "株式会社かぜ",
            "明細": [
                *_lines(
                    ("101", "KT-1", "2", ""), ("102", "KT-2", "5", ""), ("103", "", "1", "-1100")
                ),
                row("104"),  # an empty row, as kintone keeps in an untouched table
            ],
        },
    )
    ws = Workspace(company=Company(name="自社"), path=tmp_path / "k.yaml")
    cfg = src.Config.model_validate(
        {
            "type": "kintone",
            "base_url": BASE,
            "apps": {
                "products": {
                    "app": PRODUCTS,
                    "token_env": "KT",
                    "entity": "product",
                    "tax_included": True,
                    "field_map": {
                        "code": "商品コード", "name": "商品名", "unit_price": "単価", "tax_rate": "税率"
                    },
                },
                "deals": {
                    "app": DEALS,
                    "token_env": "KT",
                    "entity": "deal",
                    "field_map": {"name": "案件名", "organization": "会社名"},
                    "line_items": {
                        "table": "明細",
                        "field_map": {
                            "product_code": "商品コード", "quantity": "数量", "unit_price": "単価"
                        },
                    },
                    "tax_included": True,
                },
            },
        }
    )  # fmt: skip
    return fake, ws, cfg


def _sync(engine: Engine, fake: FakeKintone, ws: Workspace, cfg: src.Config, run: str) -> None:
    for spec in src.streams("kt", cfg, ws, client=fake.client()):
        run_stream(engine, spec, run)


def test_a_quote_from_kintone_apps_and_a_table_row_removed(engine: Engine, tmp_path: Path) -> None:
    fake, ws, cfg = _setup(tmp_path)
    _sync(engine, fake, ws, cfg, "r1")
    s = documents.Settings(seller=SELLER)
    doc = documents.issue(engine, "保守更新", s, date(2026, 12, 3))
    assert doc["customer"]["organization"] == "株式会社かぜ"
    assert [(x["description"], x["amount"]) for x in doc["lines"]] == [
        ("保守契約", "110000"),
        ("弁当", "5400"),
        ("(品名なし)", "-1100"),
    ]
    # 税込 prices everywhere: a 内税 document, the tax back-computed once per rate.
    assert doc["tax_included"] is True
    assert [(x["rate"], x["gross"], x["tax"], x["base"]) for x in doc["by_rate"]] == [
        (10, "108900", "9900", "99000"),
        (8, "5400", "400", "5000"),
    ]
    assert (doc["subtotal"], doc["tax"], doc["total"]) == ("104000", "10300", "114300")

    # The 明細 loses a row and another changes: the next sync retires the line, no duplicates.
    fake.edit(DEALS, 1, {"明細": _lines(("101", "KT-1", "3", ""), ("103", "", "1", "-1100"))})
    _sync(engine, fake, ws, cfg, "r2")
    with engine.connect() as conn:
        live = conn.execute(
            select(q.DealLineItem.product_code, q.DealLineItem.quantity)
            .where(q.DealLineItem.deleted_at.is_(None))
            .order_by(q.DealLineItem.position)
        ).all()
        assert [(c, int(n)) for c, n in live] == [("KT-1", 3), (None, 1)]
        assert conn.execute(select(q.DealLineItem.id)).all().__len__() == 3
    again = documents.reissue(engine, doc["number"], s, date(2026, 12, 4))
    assert again["revision"] == 2 and again["total"] == str(165000 - 1100)

    # The deal deleted in kintone: its lines go with it.
    del fake.apps[DEALS].records[1]
    _sync(engine, fake, ws, cfg, "r3")
    with engine.connect() as conn:
        assert not conn.execute(
            select(q.DealLineItem.id).where(q.DealLineItem.deleted_at.is_(None))
        ).all()
        assert conn.execute(select(t.Deal.deleted_at)).scalar_one() is not None


def test_a_table_field_that_is_not_a_table_is_a_bad_record() -> None:
    app = m.AppMapping(entity="deal", field_map={"name": "案件名"}, line_table="明細",
                       line_map={"quantity": "数量"})  # fmt: skip
    raw = {"$id": {"type": "__ID__", "value": "7"},
           "案件名": {"type": "SINGLE_LINE_TEXT", "value": "x"},
           "明細": {"type": "SINGLE_LINE_TEXT", "value": "2"}}  # fmt: skip
    with pytest.raises(BadRecord, match="not a table"):
        m.map_record(raw, app, MapOptions(source="kt"))


def test_a_separate_line_items_app_names_its_deal() -> None:
    app = m.AppMapping(
        entity="deal_line_item",
        field_map={"deal": "案件番号", "product_code": "品番", "quantity": "数量"},
    )
    raw = {"$id": {"type": "__ID__", "value": "40"},
           "案件番号": {"type": "NUMBER", "value": "7"},
           "品番": {"type": "SINGLE_LINE_TEXT", "value": "KT-1"},
           "数量": {"type": "NUMBER", "value": "4"}}  # fmt: skip
    (line,) = m.map_record(raw, app, MapOptions(source="kt"))
    assert (line.deal_source_id, line.product_code, int(line.quantity)) == ("7", "KT-1", 4)
    with pytest.raises(BadRecord, match="names no deal"):
        m.map_record({**raw, "案件番号": {"type": "NUMBER", "value": ""}}, app, MapOptions("kt"))
