"""HubSpot's products and line items into a quote (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from kizuna.errors import BadRecord
from mappings.crm.common import MapOptions
from mappings.crm.hubspot import MAPPERS
from warehouse.db import write_transaction
from warehouse.quotes import documents
from warehouse.state import StreamKey
from warehouse.write.store import apply_page

OPTS = MapOptions(source="hs", field_maps={"products": {"tax_rate": "tax_category"}})

PRODUCTS = [
    {"id": "p1", "properties": {"name": "導入支援", "hs_sku": "SUP-1", "price": "80000"}},
    {"id": "p2", "properties": {"name": "お弁当", "price": "1080", "tax_category": "軽減"}},
]
LINES = [
    {"id": "l1", "_deals": [{"id": "9001"}],
     "properties": {"name": "導入支援", "hs_sku": "SUP-1", "quantity": "2", "price": "80000",
                    "hs_discount_percentage": "5", "hs_position_on_quote": "0"}},
    {"id": "l2", "_deals": [{"id": "9001"}],
     "properties": {"name": "お弁当", "hs_product_id": "p2", "quantity": "10",
                    "hs_position_on_quote": "1"}},
    {"id": "l3", "_deals": [{"id": "9001"}],
     "properties": {"name": "端数値引", "quantity": "1", "price": "-1234",
                    "hs_position_on_quote": "2"}},
]  # fmt: skip
DEAL = {"id": "9001", "properties": {"dealname": "研修パッケージ", "amount": "163766"},
        "_companies": [{"id": "c1", "name": "有限会社そら", "domain": "sora.example.jp"}]}  # fmt: skip


def _map(obj: str, rows: list[dict[str, Any]]) -> list[Any]:
    return [rec for row in rows for rec in MAPPERS[obj](row, OPTS)]


def test_products_and_lines_map() -> None:
    assert [(p.code, p.unit_price, p.tax_rate) for p in _map("products", PRODUCTS)] == [
        ("SUP-1", Decimal(80000), 10),
        ("hubspot:p2", Decimal(1080), 8),
    ]
    lines = _map("line_items", LINES)
    assert [(x.deal_source_id, x.product_code, x.unit_price) for x in lines] == [
        ("9001", "SUP-1", Decimal("76000.00")),
        ("9001", "hubspot:p2", None),
        ("9001", None, Decimal("-1234.00")),
    ]


def test_a_line_on_no_deal_is_a_bad_record() -> None:
    with pytest.raises(BadRecord, match="no deal"):
        _map("line_items", [{**LINES[0], "_deals": []}])


def test_a_quote_from_hubspot_rows(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        apply_page(conn, StreamKey("hs", "products"), records=_map("products", PRODUCTS))
        apply_page(conn, StreamKey("hs", "line_items"), records=_map("line_items", LINES))
        apply_page(conn, StreamKey("hs", "deals"), records=_map("deals", [DEAL]))
    s = documents.Settings(
        seller={"name": "株式会社サンプル", "registration_number": "T7000012050002"}
    )
    doc = documents.issue(engine, "研修パッケージ", s, date(2026, 12, 3))
    assert doc["customer"]["organization"] == "有限会社そら"
    assert doc["customer"]["honorific"] == "御中"
    # 10%: 152,000 − 1,234 = 150,766 → 15,076; 8%: 10,800 → 864.
    assert [(x["rate"], x["base"], x["tax"]) for x in doc["by_rate"]] == [
        (10, "150766", "15076"),
        (8, "10800", "864"),
    ]
    assert doc["total"] == str(150766 + 10800 + 15076 + 864)
