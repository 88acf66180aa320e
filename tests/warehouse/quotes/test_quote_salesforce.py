"""Salesforce's catalog into a quote: PricebookEntry and OpportunityLineItem rows through the
mapping and the store (SQLite and PostgreSQL), then issued against the Opportunity's deal."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from kizuna.errors import BadRecord
from mappings.crm.common import MapOptions
from mappings.crm.salesforce import MAPPERS
from warehouse.db import write_transaction
from warehouse.quotes import documents
from warehouse.quotes.numbering import Series
from warehouse.state import StreamKey
from warehouse.write.store import apply_page

OPTS = MapOptions(
    source="sf",
    field_maps={"PricebookEntry": {"tax_rate": "Tax_Rate__c"}},
)
OPP = "0065g00000AbCdEAAV"


def _map(obj: str, rows: list[dict[str, Any]]) -> list[Any]:
    return [rec for row in rows for rec in MAPPERS[obj](row, OPTS)]


ENTRIES = [
    {
        "Id": "01u1", "UnitPrice": "50000.0", "IsActive": "true", "Product2Id": "01t1",
        "Product2.ProductCode": "LIC-STD", "Product2.Name": "ライセンス(年間)",
        "Product2.QuantityUnitOfMeasure": "本", "Pricebook2.Name": "標準価格表",
        "Pricebook2.IsStandard": "true", "Tax_Rate__c": "10",
    },
    {
        "Id": "01u2", "UnitPrice": "3240", "IsActive": True, "Product2Id": "01t2",
        "Product2.ProductCode": "SNACK", "Product2.Name": "菓子詰め合わせ",
        "Pricebook2.Name": "標準価格表", "Pricebook2.IsStandard": True, "Tax_Rate__c": "8%",
    },
    {
        "Id": "01u3", "UnitPrice": "45000", "IsActive": "false", "Product2Id": "01t1",
        "Product2.ProductCode": "LIC-STD", "Product2.Name": "ライセンス(年間)",
        "Pricebook2.Name": "旧価格表", "Pricebook2.IsStandard": "false",
    },
]  # fmt: skip
LINES = [
    {"Id": "00k1", "OpportunityId": OPP, "ProductCode": "LIC-STD", "Name": "ライセンス(年間)",
     "Quantity": "3.0", "UnitPrice": "50000", "Discount": "10", "SortOrder": "1"},
    {"Id": "00k2", "OpportunityId": OPP, "ProductCode": "SNACK", "Name": "菓子詰め合わせ",
     "Quantity": "2", "UnitPrice": None, "Discount": None, "SortOrder": "2"},
]  # fmt: skip
OPPORTUNITY = {
    "Id": OPP, "Name": "ライセンス更新", "StageName": "見積", "Amount": "141480",
    "Account.Name": "株式会社ひかり", "IsClosed": "false", "IsWon": "false",
}  # fmt: skip


def test_entries_and_lines_map_to_products_and_deal_lines() -> None:
    products = _map("PricebookEntry", ENTRIES)
    assert [(p.code, p.price_list, p.unit_price, p.tax_rate) for p in products] == [
        ("LIC-STD", "standard", Decimal("50000.0"), 10),
        ("SNACK", "standard", Decimal("3240"), 8),
    ]  # the inactive entry is skipped
    lines = _map("OpportunityLineItem", LINES)
    assert [(x.deal_source_id, x.unit_price, x.quantity, x.position) for x in lines] == [
        (OPP, Decimal("45000.00"), Decimal("3.0"), 1),
        (OPP, None, Decimal(2), 2),
    ]


def test_a_bad_tax_rate_is_a_bad_record() -> None:
    with pytest.raises(BadRecord, match="not a tax rate"):
        _map("PricebookEntry", [{**ENTRIES[0], "Tax_Rate__c": "7"}])


def test_a_quote_from_salesforce_rows(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        apply_page(
            conn, StreamKey("sf", "opportunitylineitem"), records=_map("OpportunityLineItem", LINES)
        )
        apply_page(conn, StreamKey("sf", "pricebookentry"), records=_map("PricebookEntry", ENTRIES))
        apply_page(conn, StreamKey("sf", "opportunity"), records=_map("Opportunity", [OPPORTUNITY]))
    s = documents.Settings(
        seller={"name": "株式会社サンプル", "registration_number": "T7000012050002"},
        series=Series("SF-{seq:05}"),
    )
    doc = documents.issue(engine, "ライセンス更新", s, date(2026, 12, 3))
    assert doc["number"] == "SF-00001"
    assert doc["customer"]["organization"] == "株式会社ひかり"
    # 3 × 45,000 at 10% → 13,500; 2 × 3,240 at 8% → 518.4 → 518.
    assert [(x["rate"], x["base"], x["tax"]) for x in doc["by_rate"]] == [
        (10, "135000", "13500"),
        (8, "6480", "518"),
    ]
    assert doc["total"] == str(135000 + 6480 + 13500 + 518)
