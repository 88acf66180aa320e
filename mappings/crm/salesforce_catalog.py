"""Salesforce's catalog for quotes: PricebookEntry → products with their price-book price,
OpportunityLineItem → deal line items (the deal is the Opportunity, by its Id).

Salesforce has no standard tax-rate field: a ``field_map`` entry ``tax_rate: Tax_Rate__c``
on either object supplies one (10%, 8%, 0.08, 軽減 …), else products are 10%. A line's
``Discount`` (percent) is folded into its unit price, as Salesforce's own TotalPrice does.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kizuna.errors import BadRecord
from mappings.crm.common import (
    MapOptions,
    as_bool,
    decimal,
    mapped,
    required_id,
    tax_rate,
    text,
)
from warehouse import records as r

CENT = Decimal("0.01")


def pricebook_entry(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    sid = required_id(raw.get("Id"), "row has no Id")
    if raw.get("IsActive") not in (None, "") and not as_bool(raw.get("IsActive")):
        return []
    m = mapped(raw, opts.fmap("PricebookEntry"))
    code = text(raw.get("Product2.ProductCode")) or text(raw.get("Product2Id"))
    name = text(raw.get("Product2.Name"))
    if not code or not name:
        raise BadRecord(
            "price book entry has no Product2.ProductCode or Product2.Name", source_id=sid
        )
    standard = as_bool(raw.get("Pricebook2.IsStandard"))
    rate = tax_rate(m.get("tax_rate"), sid)
    return [
        r.Product(
            source_id=sid,
            code=code,
            name=name,
            unit=text(raw.get("Product2.QuantityUnitOfMeasure")),
            tax_rate=10 if rate is None else rate,
            unit_price=decimal(raw.get("UnitPrice"), "UnitPrice", sid),
            price_list="standard" if standard else text(raw.get("Pricebook2.Name")) or "standard",
            currency=text(raw.get("CurrencyIsoCode")) or opts.currency,
        )
    ]


def opportunity_line_item(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    sid = required_id(raw.get("Id"), "row has no Id")
    deal = required_id(raw.get("OpportunityId"), "line item has no OpportunityId")
    m = mapped(raw, opts.fmap("OpportunityLineItem"))
    price = decimal(raw.get("UnitPrice"), "UnitPrice", sid)
    discount = decimal(raw.get("Discount"), "Discount", sid)
    if price is not None and discount:
        price = (price * (100 - discount) / 100).quantize(CENT)
    quantity = decimal(raw.get("Quantity"), "Quantity", sid)
    position = decimal(raw.get("SortOrder"), "SortOrder", sid)
    return [
        r.DealLineItem(
            source_id=sid,
            deal_source_id=deal,
            position=int(position or 0),
            product_code=text(raw.get("ProductCode")),
            description=text(raw.get("Description")) or text(raw.get("Name")),
            quantity=Decimal(1) if quantity is None else quantity,
            unit_price=price,
            tax_rate=tax_rate(m.get("tax_rate"), sid),
        )
    ]
