"""kintone's catalog for quotes: a product app (商品マスタ) → products with their price, and
deal lines → deal line items, either from the deal app's 明細 table (a ``SUBTABLE`` field:
``{"type": "SUBTABLE", "value": [{"id": "48290", "value": {code: {"type", "value"}}}]}``)
or from a separate line-items app whose field names the deal's record number (``$id``).

kintone apps have no fixed schema, so the admin maps field codes as for every app. Product
targets: ``code``, ``name``, ``unit_price``, ``unit``, ``tax_rate``, ``price_list``. Line
targets: ``deal`` (separate app only), ``product_code``, ``description``, ``quantity``,
``unit_price``, ``unit``, ``tax_rate``, ``position``. ``tax_included`` says the app's prices
are 税込.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from kizuna.errors import BadRecord
from mappings.crm.common import decimal, tax_rate, text
from warehouse import records as r

Get = Callable[[Mapping[str, Any], str], Any]


def product(
    raw: Mapping[str, Any], fm: Mapping[str, str], get: Get, sid: str, tax_included: bool
) -> list[r.Record]:
    def f(target: str) -> Any:
        return get(raw, fm[target]) if target in fm else None

    code, name = text(f("code")), text(f("name"))
    if not code or not name:
        raise BadRecord(
            f"product has no code ({fm.get('code')!r}) or name ({fm.get('name')!r})",
            source_id=sid,
        )
    rate = tax_rate(f("tax_rate"), sid)
    return [
        r.Product(
            source_id=sid,
            code=code,
            name=name,
            unit=text(f("unit")),
            tax_rate=10 if rate is None else rate,
            unit_price=decimal(f("unit_price"), fm.get("unit_price", ""), sid),
            price_list=text(f("price_list")) or "standard",
            tax_included=tax_included,
        )
    ]


def _line(
    values: Mapping[str, Any],
    fm: Mapping[str, str],
    get: Get,
    sid: str,
    deal: str,
    position: int,
    tax_included: bool,
) -> r.DealLineItem | None:
    def f(target: str) -> Any:
        return get(values, fm[target]) if target in fm else None

    code, desc = text(f("product_code")), text(f("description"))
    price = decimal(f("unit_price"), fm.get("unit_price", ""), sid)
    if not code and not desc and price is None:
        return None  # kintone keeps one empty row in a table nobody filled in
    qty = decimal(f("quantity"), fm.get("quantity", ""), sid)
    pos = decimal(f("position"), fm.get("position", ""), sid)
    return r.DealLineItem(
        source_id=sid,
        deal_source_id=deal,
        position=position if pos is None else int(pos),
        product_code=code,
        description=desc,
        quantity=Decimal(1) if qty is None else qty,
        unit_price=price,
        tax_rate=tax_rate(f("tax_rate"), sid),
        unit=text(f("unit")),
        tax_included=tax_included if price is not None else None,
    )


def table_lines(
    raw: Mapping[str, Any],
    table: str,
    fm: Mapping[str, str],
    get: Get,
    sid: str,
    tax_included: bool,
) -> list[r.Record]:
    """The deal record's 明細 rows, in table order; every line carries the deal's source id,
    so a row removed from the table retires its line on the next sync."""
    cell = raw.get(table)
    if cell is None:
        return []
    if not isinstance(cell, Mapping) or cell.get("type") != "SUBTABLE":
        raise BadRecord(f"field {table!r} is not a table (SUBTABLE)", source_id=sid)
    out: list[r.Record] = []
    for i, row in enumerate(cell.get("value") or []):
        values = row.get("value") if isinstance(row, Mapping) else None
        if not isinstance(values, Mapping):
            raise BadRecord(f"table {table!r}: row {i + 1} has no values", source_id=sid)
        line = _line(values, fm, get, sid, sid, i, tax_included)
        if line is not None:
            out.append(line)
    return out


def line_record(
    raw: Mapping[str, Any], fm: Mapping[str, str], get: Get, sid: str, tax_included: bool
) -> list[r.Record]:
    """One record of a separate line-items app; ``deal`` holds the deal's record number."""
    deal = text(get(raw, fm["deal"])) if "deal" in fm else None
    if not deal:
        raise BadRecord(f"line item names no deal (field {fm.get('deal')!r})", source_id=sid)
    line = _line(raw, fm, get, sid, deal, 0, tax_included)
    return [line] if line is not None else []
