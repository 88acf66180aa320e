"""RFM scores (recency, frequency, monetary; 1 = weakest, 5 = strongest quintile).

Purchases are ``purchase_order`` rows plus won deals with an amount, both per person. A won
deal counts at its last update (the store keeps no separate won date). Quintiles use the
window function ``ntile(5)`` so SQLite and PostgreSQL score alike; ties are broken by person
id so a score never changes between two runs over the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Connection, Subquery, func, literal_column, select, union_all

from warehouse import schema as t
from warehouse.activation.audience import utc


@dataclass(frozen=True)
class Rfm:
    recency: int
    frequency: int
    monetary: int
    last_purchase: datetime
    purchases: int
    amount: Decimal


def _purchases(as_of: datetime) -> Subquery:
    o = t.table(t.Order)
    d = t.table(t.Deal)
    cut = utc(as_of)
    orders = select(
        o.c.person_id.label("person_id"),
        o.c.amount.label("amount"),
        o.c.ordered_at.label("at"),
    ).where(o.c.deleted_at.is_(None), o.c.person_id.is_not(None), o.c.ordered_at <= cut)
    won = select(
        d.c.person_id.label("person_id"),
        d.c.amount.label("amount"),
        d.c.updated_at.label("at"),
    ).where(
        d.c.status == "won",
        d.c.deleted_at.is_(None),
        d.c.person_id.is_not(None),
        d.c.amount.is_not(None),
        d.c.updated_at <= cut,
    )
    return union_all(orders, won).subquery("purchase")


def rfm_scores(as_of: datetime) -> Subquery:
    """One row per person with a purchase: ``person_id, recency, frequency, monetary``."""
    p = _purchases(as_of)
    agg = (
        select(
            p.c.person_id,
            func.max(p.c.at).label("last_at"),
            func.count().label("n"),
            func.sum(p.c.amount).label("total"),
        )
        .group_by(p.c.person_id)
        .subquery("rfm_agg")
    )
    five: ColumnElement[int] = literal_column("5")
    return select(
        agg.c.person_id,
        func.ntile(five).over(order_by=(agg.c.last_at, agg.c.person_id)).label("recency"),
        func.ntile(five).over(order_by=(agg.c.n, agg.c.person_id)).label("frequency"),
        func.ntile(five).over(order_by=(agg.c.total, agg.c.person_id)).label("monetary"),
        agg.c.last_at,
        agg.c.n,
        agg.c.total,
    ).subquery("rfm")


def score_people(conn: Connection, as_of: datetime) -> dict[int, Rfm]:
    """Every scored person, for previews and reports."""
    s = rfm_scores(as_of)
    out: dict[int, Rfm] = {}
    for row in conn.execute(select(s)):
        out[int(row.person_id)] = Rfm(
            recency=int(row.recency),
            frequency=int(row.frequency),
            monetary=int(row.monetary),
            last_purchase=row.last_at,
            purchases=int(row.n),
            amount=Decimal(row.total),
        )
    return out
