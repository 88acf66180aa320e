"""HubSpot's catalog for quotes: products (SKU, name, price) and line items, each line
attached to its deal through the ``_deals`` association.

HubSpot products have one price (the ``standard`` price list here). Tax rates come from a
``field_map`` entry ``tax_rate: <property>`` when the portal has one, else products are 10%.
A line's ``hs_discount_percentage`` is folded into its unit price; ``discount`` (an amount off
the line) is spread over its quantity.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kizuna.errors import BadRecord
from mappings.crm.common import MapOptions, decimal, mapped, required_id, tax_rate, text
from warehouse import records as r

CENT = Decimal("0.01")


def _props(raw: Mapping[str, Any]) -> dict[str, Any]:
    p = raw.get("properties")
    return dict(p) if isinstance(p, Mapping) else {}


def _rate(raw: Mapping[str, Any], obj: str, opts: MapOptions, sid: str) -> int | None:
    return tax_rate(mapped(_props(raw), opts.fmap(obj)).get("tax_rate"), sid)


def product(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    sid, p = required_id(raw.get("id"), "record has no id"), _props(raw)
    name = text(p.get("name"))
    if not name:
        raise BadRecord("product has no name", source_id=sid)
    rate = _rate(raw, "products", opts, sid)
    return [
        r.Product(
            source_id=sid,
            code=text(p.get("hs_sku")) or f"hubspot:{sid}",
            name=name,
            tax_rate=10 if rate is None else rate,
            unit_price=decimal(p.get("price"), "price", sid),
            currency=opts.currency,
        )
    ]


def line_item(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    sid, p = required_id(raw.get("id"), "record has no id"), _props(raw)
    deals = [str(d["id"]) for d in raw.get("_deals") or [] if d.get("id")]
    if not deals:
        raise BadRecord("line item is on no deal (no deal association)", source_id=sid)
    qty = decimal(p.get("quantity"), "quantity", sid) or Decimal(1)
    price = decimal(p.get("price"), "price", sid)
    pct = decimal(p.get("hs_discount_percentage"), "hs_discount_percentage", sid)
    off = decimal(p.get("discount"), "discount", sid)
    if price is not None and pct:
        price = price * (100 - pct) / 100
    if price is not None and off and qty:
        price = price - off / qty
    product_id = text(p.get("hs_product_id"))
    return [
        r.DealLineItem(
            source_id=sid,
            deal_source_id=deals[0],
            position=int(decimal(p.get("hs_position_on_quote"), "position", sid) or 0),
            product_code=text(p.get("hs_sku")) or (f"hubspot:{product_id}" if product_id else None),
            description=text(p.get("name")) or text(p.get("description")),
            quantity=qty,
            unit_price=price.quantize(CENT) if price is not None else None,
            tax_rate=_rate(raw, "line_items", opts, sid),
        )
    ]
