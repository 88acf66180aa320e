"""Spreadsheet rows → products (商品マスタ) and deal line items (商談明細).

The same column map as contacts and deals: a products sheet maps 商品コード/商品名/単価/税率
(税込単価 instead of 単価 for a tax-included price list), a line-items sheet adds 案件ID
(``line.deal``: the deal's row key in its own source) and 数量. A row with ``line.deal`` is a line item whose 商品コード names the product; a row with
only product columns is a catalog entry. Amounts may be negative (値引 lines): ``-5,000`` and
``△5,000`` both read as minus five thousand yen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from kizuna.errors import BadRecord
from mappings.spreadsheet import values as v
from warehouse import records as r
from warehouse.quotes.tax import parse_rate

TARGETS: dict[str, str] = {
    "product.code": "product code (商品コード / 品番)",
    "product.name": "product name (商品名)",
    "product.unit_price": "unit price before tax (単価, 税抜)",
    "product.unit_price_incl": "unit price including tax (税込単価): back-computed per rate",
    "product.tax_rate": "consumption tax rate (税率: 10%, 8% 軽減, 0%)",
    "product.unit": "unit (単位: 式, 個, 時間 …)",
    "product.price_list": "price list name (価格表); 'standard' when absent",
    "line.deal": "the deal this line belongs to (案件ID: the deal's key in its source)",
    "line.quantity": "quantity (数量)",
    "line.description": "line text when it differs from the product name (品名・摘要)",
    "line.position": "line order on the document (行番号)",
}

HEADERS: dict[str, tuple[str, ...]] = {
    "product.code": ("商品コード", "品番", "商品ID", "Product Code", "SKU"),
    "product.name": ("商品名", "製品名", "Product", "Product Name"),
    "product.unit_price": ("単価", "標準単価", "販売単価", "Unit Price", "List Price"),
    "product.unit_price_incl": ("税込単価", "税込価格", "単価(税込)", "販売単価(税込)"),
    "product.tax_rate": ("税率", "消費税率", "Tax Rate"),
    "product.unit": ("単位", "Unit"),
    "product.price_list": ("価格表", "Price List", "Price Book"),
    "line.deal": ("案件ID", "商談ID", "Deal ID", "Opportunity ID"),
    "line.quantity": ("数量", "Quantity", "Qty"),
    "line.description": ("品名", "摘要", "明細", "Description"),
    "line.position": ("行番号", "No", "Line No"),
}

Cells = Mapping[str, tuple[str, str]]
T = TypeVar("T")


def _get(one: Cells, target: str) -> str | None:
    hit = one.get(target)
    return hit[1] if hit else None


def _read(one: Cells, target: str, parse: Callable[[str], T]) -> T | None:
    hit = one.get(target)
    if hit is None:
        return None
    try:
        return parse(hit[1])
    except (ValueError, ArithmeticError) as exc:
        raise BadRecord(f"{hit[0]}: {exc}") from None


def _price(text: str) -> Decimal:
    parsed = v.parse_amount(text.strip().replace("−", "-"))
    if parsed is None:
        raise ValueError(f"not a price: {text!r}")
    amount, currency = parsed
    if currency not in (None, "JPY"):
        raise ValueError(f"{text!r} is in {currency}; prices are in yen")
    return amount


def _quantity(text: str) -> Decimal:
    try:
        q = Decimal(v.nfkc(text).replace(",", "").strip())
    except InvalidOperation:
        raise ValueError(f"not a quantity: {text!r}") from None
    if not q.is_finite():
        raise ValueError(f"not a quantity: {text!r}")
    return q


def _position(text: str) -> int:
    return int(v.nfkc(text).strip())


def records(sid: str, one: Cells) -> list[r.Record]:
    """The product or the line item a row holds (none when it has neither kind of column)."""
    deal = _get(one, "line.deal")
    code = _get(one, "product.code")
    price = _read(one, "product.unit_price", _price)
    incl = _read(one, "product.unit_price_incl", _price)
    if price is not None and incl is not None:
        raise BadRecord("a row has both 単価 (税抜) and 税込単価; keep one")
    included = incl is not None
    price = incl if included else price
    rate = _read(one, "product.tax_rate", parse_rate)
    unit = _get(one, "product.unit")
    line_text = _get(one, "line.description")
    qty = _read(one, "line.quantity", _quantity)
    # A deals sheet keyed by 案件ID names a deal too; a line also has something to quote.
    if deal and (code or price is not None or qty is not None or line_text):
        return [
            r.DealLineItem(
                source_id=sid,
                deal_source_id=deal,
                position=_read(one, "line.position", _position) or 0,
                product_code=code,
                description=line_text or _get(one, "product.name"),
                quantity=qty if qty is not None else Decimal(1),
                unit_price=price,
                tax_rate=rate,
                unit=unit,
                tax_included=included if price is not None else None,
            )
        ]
    if code:
        name = _get(one, "product.name") or _get(one, "line.description")
        if not name:
            raise BadRecord(f"product {code!r} has no name (商品名)")
        return [
            r.Product(
                source_id=sid,
                code=code,
                name=name,
                unit=unit,
                tax_rate=10 if rate is None else rate,
                unit_price=price,
                price_list=_get(one, "product.price_list") or "standard",
                tax_included=included,
            )
        ]
    return []
