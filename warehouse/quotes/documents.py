"""Issuing quotes: a deal, its customer and its lines frozen into a numbered document.

``issue`` gathers what the warehouse knows (the deal, its company and contact, the priced
lines), computes the totals (``tax.compute``), and in one write transaction takes the next
number, stores the quote and a ``document`` activity on the deal (so the pipeline and the 360
view list it with its amounts) and lets the caller render the files. Re-issuing a number adds
revision n+1 from the deal's current lines; an issued revision is never changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, func, insert, select, update

from kizuna.errors import FatalError
from warehouse import schema as t
from warehouse.db import write_transaction
from warehouse.identity import schema as ids
from warehouse.quotes import schema as q
from warehouse.quotes.catalog import deal_lines
from warehouse.quotes.numbering import Series, allocate
from warehouse.quotes.tax import Rounding, Totals, compute, yen
from warehouse.write.bulk import insert_ids

Renderer = Callable[[dict[str, Any]], dict[str, str]]
"""Document → files written (``{"html": path, "pdf": path}``), called before the commit."""


@dataclass(frozen=True)
class Settings:
    """The seller's side of every quote (the workspace's ``quotes:`` section, validated)."""

    seller: Mapping[str, str]
    series: Series = field(default_factory=lambda: Series("Q-{yyyy}-{seq:04}"))
    validity_days: int = 30
    rounding: Rounding = "floor"
    price_list: str = "standard"
    payment_terms: str = ""
    remarks: str = ""


class QuoteError(FatalError):
    """A quote cannot be issued as asked; the message says what to fix."""


def find_deal(conn: Connection, ref: str, visible: ColumnElement[bool] | None = None) -> int:
    """A deal by warehouse id (``12``) or exact name; an ambiguous name lists the ids.

    ``visible`` (a ``warehouse.access.scope.deals`` condition): a deal outside it is not found.
    """
    d = t.Deal
    live = d.deleted_at.is_(None) if visible is None else and_(d.deleted_at.is_(None), visible)
    if ref.strip().isdigit():
        got = conn.execute(select(d.id).where(d.id == int(ref), live)).scalar_one_or_none()
        if got is not None:
            return int(got)
    ids = conn.execute(select(d.id).where(d.name == ref.strip(), live).order_by(d.id)).scalars()
    found = list(ids)
    if len(found) == 1:
        return int(found[0])
    if found:
        raise QuoteError(
            f"{len(found)} deals are named {ref!r} (ids {', '.join(map(str, found))}); "
            "pass the id instead"
        )
    raise QuoteError(
        f"no deal {ref!r}; pass a deal id or its exact name (see `kizuna quote deals`)"
    )


def deal_by_source(conn: Connection, connector: str, source_id: str) -> int | None:
    """The live deal a source row feeds (a sheet's 案件ID, a CRM's record id), if any."""
    sr, d = t.SourceRecord, t.Deal
    got = conn.execute(
        select(d.id)
        .join(sr, (sr.entity == "deal") & (sr.entity_id == d.id))
        .where(
            sr.connector == connector,
            sr.source_id == source_id,
            sr.deleted_at.is_(None),
            d.deleted_at.is_(None),
        )
        .limit(1)
    ).scalar_one_or_none()
    return None if got is None else int(got)


def _customer(conn: Connection, deal_id: int) -> dict[str, Any]:
    d, o, p = t.Deal, t.Organization, t.Person
    row = conn.execute(
        select(
            d.name,
            d.currency,
            o.name,
            o.address,
            p.full_name,
            p.family_name,
            p.given_name,
            p.department,
            p.title,
            p.id,
            p.primary_email,
        )
        .outerjoin(o, o.id == d.organization_id)
        .outerjoin(p, p.id == d.person_id)
        .where(d.id == deal_id)
    ).one()
    deal_name, currency, org, address, full, family, given, dept, title, pid, email = row
    # The customer as the 360 view shows them: the resolved person's golden fields, and the
    # company's address from another record of the same company when this one has none.
    gold = _golden(conn, "person", pid) if pid is not None else {}
    full = gold.get("full_name") or full
    family, given = gold.get("family_name") or family, gold.get("given_name") or given
    dept, title = gold.get("department") or dept, gold.get("title") or title
    email = gold.get("primary_email") or email
    org_id = conn.execute(select(d.organization_id).where(d.id == deal_id)).scalar_one()
    if org_id is not None and not address:
        address = _cluster_address(conn, int(org_id))
    if currency and currency.upper() != "JPY":
        raise QuoteError(f"deal {deal_id} is in {currency}; quotes are issued in yen (JPY) only")
    person = full or " ".join(x for x in (family, given) if x) or None
    if org is None and person is None:
        raise QuoteError(
            f"deal {deal_id} ({deal_name}) has no company or contact to address the quote to; "
            "link one in the source and sync"
        )
    return {
        "deal": deal_name,
        "organization": org,
        "address": address,
        "person": person,
        "department": dept,
        "title": title,
        "person_id": pid,
        "email": email,
        # 宛名: a company alone takes 御中; a named person takes 様 (never both on one name).
        "honorific": "様" if person else "御中",
    }


def _golden(conn: Connection, entity: str, record_id: int) -> dict[str, Any]:
    """field → value of the resolved cluster a row belongs to (empty when it stands alone)."""
    m, c = ids.IdentityMember, ids.IdentityCluster
    golden = conn.execute(
        select(c.golden)
        .join(m, (m.entity == c.entity) & (m.cluster_id == c.id))
        .where(m.entity == entity, m.record_id == record_id)
    ).scalar_one_or_none()
    return {k: v.get("value") for k, v in (golden or {}).items() if isinstance(v, dict)}


def _cluster_address(conn: Connection, org_id: int) -> str | None:
    m, o = ids.IdentityMember, t.Organization
    cluster = (
        select(m.cluster_id)
        .where(m.entity == "organization", m.record_id == org_id)
        .scalar_subquery()
    )
    got = conn.execute(
        select(o.address)
        .join(m, (m.entity == "organization") & (m.record_id == o.id))
        .where(
            m.cluster_id == cluster, o.address.is_not(None), o.address != "", o.deleted_at.is_(None)
        )
        .order_by(o.id)
        .limit(1)
    ).scalar_one_or_none()
    return None if got is None else str(got)


def _money(totals: Totals) -> dict[str, Any]:
    return {
        "lines": [
            {
                "description": p.line.description,
                "product_code": p.line.product_code,
                "quantity": str(p.line.quantity.normalize()),
                "unit": p.line.unit or "",
                "unit_price": str(p.unit_price),
                "tax_included": p.line.tax_included,
                "tax_rate": p.line.tax_rate,
                "amount": str(p.amount),
            }
            for p in totals.lines
        ],
        "by_rate": [
            {
                "rate": rt.rate,
                "reduced": rt.reduced,
                "base": str(rt.base),
                "tax": str(rt.tax),
                "gross": str(rt.gross),
            }
            for rt in totals.by_rate
        ],
        "tax_included": totals.tax_included,
        "subtotal": str(totals.subtotal),
        "tax": str(totals.tax),
        "total": str(totals.total),
    }


def _prepare(
    conn: Connection, deal_id: int, s: Settings, day: date
) -> tuple[dict[str, Any], Totals]:
    customer = _customer(conn, deal_id)
    lines, unpriced = deal_lines(conn, deal_id, s.price_list)
    if unpriced:
        names = ", ".join(u.product_code or u.description for u in unpriced[:5])
        raise QuoteError(
            f"deal {deal_id}: {len(unpriced)} line(s) have no price ({names}); give them a "
            f"unit price or add the product to price list {s.price_list!r}"
        )
    if not lines:
        raise QuoteError(
            f"deal {deal_id} ({customer['deal']}) has no line items; add them to a line-items "
            "source (see README, Quotes) and sync"
        )
    totals = compute(lines, s.rounding)
    doc = {
        "deal_id": deal_id,
        "subject": customer["deal"],
        "customer": customer,
        "seller": dict(s.seller),
        "issue_date": day.isoformat(),
        "valid_until": (day + timedelta(days=s.validity_days)).isoformat(),
        "payment_terms": s.payment_terms,
        "remarks": s.remarks,
        "rounding": s.rounding,
        "currency": "JPY",
        **_money(totals),
    }
    return doc, totals


def _store(
    conn: Connection, doc: dict[str, Any], totals: Totals, render: Renderer | None
) -> dict[str, Any]:
    number, rev, deal_id = doc["number"], doc["revision"], doc["deal_id"]
    ts = datetime.now(UTC)
    shown = number if rev == 1 else f"{number} (第{rev}版)"
    act = {
        "key": f"quote:{number}:r{rev}",
        "kind": "document",
        "occurred_at": ts,
        "direction": "outbound",
        "subject": f"御見積書 {shown}: {doc['subject']}",
        "snippet": f"合計 {yen(totals.total)} (小計 {yen(totals.subtotal)}, 消費税 {yen(totals.tax)})",
        "status": "confirmed",
        "revision": rev,
        "deal_id": deal_id,
        "attributes": {
            "document": "quote",
            "quote_number": number,
            "revision": rev,
            "subtotal": doc["subtotal"],
            "tax": doc["tax"],
            "total": doc["total"],
            "by_rate": doc["by_rate"],
        },
        "created_at": ts,
        "updated_at": ts,
    }
    (activity_id,) = insert_ids(conn, t.Activity, [act])
    c = doc["customer"]
    if c["person_id"] is not None and c["email"]:
        # The contact as the addressee, so the quote is in their 360 view's timeline too.
        conn.execute(
            insert(t.table(t.ActivityParticipant)).values(
                activity_id=activity_id,
                email=c["email"],
                role="to",
                person_id=c["person_id"],
                name=c["person"],
            )
        )
    files = render(doc) if render else {}
    conn.execute(
        insert(t.table(q.Quote)).values(
            number=number,
            revision=rev,
            deal_id=deal_id,
            activity_id=activity_id,
            issue_date=date.fromisoformat(doc["issue_date"]),
            valid_until=date.fromisoformat(doc["valid_until"]),
            subtotal=totals.subtotal,
            tax=totals.tax,
            total=totals.total,
            document=doc,
            files=files,
            remarks=doc["remarks"] or None,
            created_at=ts,
        )
    )
    if files:
        a = t.table(t.Activity)
        conn.execute(
            update(a)
            .where(a.c.id == activity_id)
            .values(attributes={**act["attributes"], "files": files})
        )
    return {**doc, "files": files}


def issue(
    engine: Engine,
    deal_ref: str,
    s: Settings,
    day: date,
    render: Renderer | None = None,
    visible: ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """Issue revision 1 of a new quote for a deal; returns the stored document."""
    with write_transaction(engine) as conn:
        deal_id = find_deal(conn, deal_ref, visible)
        doc, totals = _prepare(conn, deal_id, s, day)
        doc["number"] = allocate(conn, s.series, day)
        doc["revision"] = 1
        return _store(conn, doc, totals, render)


def reissue(
    engine: Engine, number: str, s: Settings, day: date, render: Renderer | None = None
) -> dict[str, Any]:
    """Revision n+1 of ``number`` from its deal's current lines; earlier revisions stay."""
    with write_transaction(engine) as conn:
        qq = q.Quote
        row = conn.execute(
            select(func.max(qq.revision), func.min(qq.deal_id)).where(qq.number == number)
        ).one()
        if row[0] is None:
            raise QuoteError(f"no quote numbered {number!r}; see `kizuna quote list`")
        doc, totals = _prepare(conn, int(row[1]), s, day)
        doc["number"] = number
        doc["revision"] = int(row[0]) + 1
        return _store(conn, doc, totals, render)


def history(conn: Connection, deal_id: int | None = None) -> list[dict[str, Any]]:
    """Every issued revision (newest first), optionally of one deal: the list the CLI shows."""
    qq, d = q.Quote, t.Deal
    stmt = (
        select(
            qq.number, qq.revision, qq.issue_date, qq.valid_until, qq.total, d.id, d.name, qq.files
        )
        .join(d, d.id == qq.deal_id)
        .order_by(qq.created_at.desc(), qq.id.desc())
    )
    if deal_id is not None:
        stmt = stmt.where(qq.deal_id == deal_id)
    return [
        {
            "number": n,
            "revision": rev,
            "issue_date": issued,
            "valid_until": until,
            "total": Decimal(total),
            "deal_id": did,
            "deal": dname,
            "files": files or {},
        }
        for n, rev, issued, until, total, did, dname, files in conn.execute(stmt)
    ]


def revisions(conn: Connection, number: str) -> list[dict[str, Any]]:
    """Every stored document of a quote number, oldest revision first (empty: no such quote)."""
    qq = q.Quote
    rows = conn.execute(
        select(qq.document).where(qq.number == number).order_by(qq.revision)
    ).scalars()
    return [dict(doc) for doc in rows]


def deal_source_id(conn: Connection, deal_id: int, connector: str) -> str | None:
    """The id a source knows a deal by (an Opportunity Id, a HubSpot deal id), if it has it."""
    sr = t.SourceRecord
    got = conn.execute(
        select(sr.source_id)
        .where(
            sr.connector == connector,
            sr.entity == "deal",
            sr.entity_id == deal_id,
            sr.deleted_at.is_(None),
        )
        .order_by(sr.source_id)
        .limit(1)
    ).scalar_one_or_none()
    return None if got is None else str(got)
