"""The catalog in and out of the store: products, price-list prices and deal line items.

Written through ``warehouse.write.store.apply_page`` like every record (lineage, cursor and
quarantine in one transaction). Products are one row per code whichever source names them,
as organizations are one row per 法人番号; a line item is one row per source row.
Read back, a deal's lines are found through the deal's lineage (``deal_ref`` is the deal's
source id), and a line without its own price takes the product's price-list price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.sql import bindparam

from warehouse import records as r
from warehouse import schema as t
from warehouse.quotes import schema as q
from warehouse.quotes.tax import Line
from warehouse.write.bulk import executemany, insert_ids
from warehouse.write.store_base import WriterBase, _select_in
from warehouse.write.upsert import upsert


def write_catalog(w: WriterBase, records: Sequence[r.Product | r.DealLineItem]) -> None:
    products = [x for x in records if isinstance(x, r.Product)]
    lines = [x for x in records if isinstance(x, r.DealLineItem)]
    if products:
        _products(w, products)
    if lines:
        _lines(w, lines)


def _products(w: WriterBase, products: Sequence[r.Product]) -> None:
    by_code = {x.code: x for x in products}  # last one wins within a page
    p = t.table(q.Product)
    known = {
        code
        for (code,) in _select_in(
            w.conn, lambda part: select(p.c.code).where(p.c.code.in_(part)), by_code
        )
    }
    upsert(
        w.conn,
        p,
        [
            {
                "code": x.code,
                "name": x.name,
                "unit": x.unit,
                "tax_rate": x.tax_rate,
                "created_at": w.ts,
                "updated_at": w.ts,
                "deleted_at": None,
            }
            for x in by_code.values()
        ],
        ["code"],
        ["name", "unit", "tax_rate", "updated_at", "deleted_at"],
    )
    ids: dict[str, int] = dict(
        _select_in(w.conn, lambda part: select(p.c.code, p.c.id).where(p.c.code.in_(part)), by_code)
    )
    prices = [
        {
            "price_list": x.price_list,
            "product_id": ids[x.code],
            "unit_price": x.unit_price,
            "currency": x.currency,
            "tax_included": x.tax_included,
            "updated_at": w.ts,
        }
        for x in by_code.values()
        if x.unit_price is not None
    ]
    upsert(w.conn, t.table(q.PriceListEntry), prices, ["price_list", "product_id"])
    new = len(set(by_code) - known)
    w._count("product", new, len(by_code) - new)
    w._record_lineage("product", [(x.source_id, x.payload_hash, ids[x.code]) for x in products])


def _lines(w: WriterBase, lines: Sequence[r.DealLineItem]) -> None:
    """One source row may hold several lines (a kintone deal's 明細 subtable): its lines keep
    their rows in order, extra lines are inserted and lines it no longer has are retired (by
    the lineage rewrite). The same row twice in a page: the last copy wins."""
    li = q.DealLineItem
    groups: dict[str, list[r.DealLineItem]] = {}
    for x in lines:
        group = groups.setdefault(x.source_id, [])
        if group and group[-1].payload_hash != x.payload_hash:
            group.clear()  # a later copy of the same source row
        group.append(x)
    known = w._lineage_rows("deal_line_item", list(groups))

    def row(x: r.DealLineItem) -> dict[str, Any]:
        return {
            "deal_ref": x.deal_source_id,
            "position": x.position,
            "product_code": x.product_code,
            "description": x.description,
            "quantity": x.quantity,
            "unit_price": x.unit_price,
            "tax_rate": x.tax_rate,
            "unit": x.unit,
            "tax_included": x.tax_included,
            "updated_at": w.ts,
        }

    placed: list[tuple[r.DealLineItem, int | None]] = []
    for sid, group in groups.items():
        have = sorted({eid for _, eid, _ in known[sid] if eid is not None})
        placed += [(x, have[i] if i < len(have) else None) for i, x in enumerate(group)]
    new = [x for x, eid in placed if eid is None]
    got = insert_ids(w.conn, li, [row(x) | {"created_at": w.ts} for x in new]) if new else []
    fresh = iter(got)
    ids = [(x, eid if eid is not None else next(fresh)) for x, eid in placed]
    ups = [row(x) | {"b_id": eid} for x, eid in placed if eid is not None]
    if ups:
        cols: dict[str, Any] = {c: bindparam(c) for c in ups[0] if c != "b_id"}
        executemany(w.conn, update(li).where(li.id == bindparam("b_id")).values(cols), ups)
    w._count("deal_line_item", len(new), len(ups))
    w._record_lineage(
        "deal_line_item", [(x.source_id, x.payload_hash, eid) for x, eid in ids], fresh=got
    )


@dataclass(frozen=True)
class Unpriced:
    """A line that names no price and whose product has none in the price list."""

    description: str
    product_code: str | None


def deal_lines(
    conn: Connection, deal_id: int, price_list: str = "standard"
) -> tuple[list[Line], list[Unpriced]]:
    """The live lines of a deal, in position order, priced and taxed; and those with no price."""
    sr = t.SourceRecord
    li = q.DealLineItem
    p = q.Product
    pe = q.PriceListEntry
    refs = select(sr.source_id).where(
        sr.entity == "deal", sr.entity_id == deal_id, sr.deleted_at.is_(None)
    )
    rows = conn.execute(
        select(
            li.description,
            li.quantity,
            li.unit_price,
            li.tax_rate,
            li.unit,
            li.product_code,
            li.tax_included,
            p.name,
            p.unit,
            p.tax_rate,
            pe.unit_price,
            pe.tax_included,
        )
        .outerjoin(p, (p.code == li.product_code) & p.deleted_at.is_(None))
        .outerjoin(pe, (pe.product_id == p.id) & (pe.price_list == price_list))
        .where(li.deal_ref.in_(refs), li.deleted_at.is_(None))
        .order_by(li.position, li.id)
    ).all()
    out: list[Line] = []
    missing: list[Unpriced] = []
    for (
        desc,
        qty,
        price,
        rate,
        unit,
        code,
        incl,
        pname,
        punit,
        prate,
        list_price,
        list_incl,
    ) in rows:
        text = desc or pname or code or "(品名なし)"
        unit_price = price if price is not None else list_price
        # A line's own price says its basis; else it takes the price list's (税込 or 税抜).
        included = bool(incl) if price is not None else bool(list_incl)
        if unit_price is None:
            missing.append(Unpriced(text, code))
            continue
        out.append(
            Line(
                description=text,
                quantity=Decimal(qty),
                unit_price=Decimal(unit_price),
                tax_rate=int(rate if rate is not None else prate if prate is not None else 10),
                unit=unit or punit,
                product_code=code,
                tax_included=included,
            )
        )
    return out, missing
