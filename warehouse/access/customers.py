"""Finding customers as a viewer may see them: search across names (kanji, kana, romaji),
companies, mail and phone, one row per customer (person cluster).

The scope condition is part of the one query, so a search, a list page and an export can
only return customers the viewer may see. Readings come from the resolver's comparable form
(``identity_feature``): ``tanaka``, ``たなか`` and ``田中`` find the same person once identity
resolution has run; before that, the written columns still match as typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, and_, cast, func, or_, select

from warehouse import schema as t
from warehouse.access import scope
from warehouse.access.scope import Viewer
from warehouse.identity import admin, graph, survivorship
from warehouse.identity import schema as ids
from warehouse.identity.keys.normalize import normalize_org_name
from warehouse.identity.keys.readings import reading_tokens

MAX_QUERY = 100
MAX_ROWS = 200
_NOT_DIGIT = re.compile(r"\D+")
_HIRAGANA = {c: c + 0x60 for c in range(0x3041, 0x3097)}


@dataclass(frozen=True)
class CustomerRow:
    id: int
    public_id: str | None
    name: str
    kana: str
    email: str | None
    company: str | None
    records: int


def _lower_contains(col: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    return func.lower(col).contains(text, autoescape=True)


def matches(query: str) -> ColumnElement[bool]:
    """Condition on ``person``: the query appears in a name, reading, address, phone or company."""
    p, o = t.table(t.Person).c, t.table(t.Organization).c
    pe, pp = t.table(t.PersonEmail).c, t.table(t.PersonPhone).c
    q = query.strip()[:MAX_QUERY]
    low = q.lower()
    tight = re.sub(r"[\s\u3000]+", "", low)
    kata = low.translate(_HIRAGANA)
    conds: list[ColumnElement[bool]] = [
        _lower_contains(c, low) for c in (p.full_name, p.family_name, p.given_name, p.primary_email)
    ]
    written = func.coalesce(p.family_name, "") + func.coalesce(p.given_name, "")
    conds.append(_lower_contains(written, tight))
    kana = func.coalesce(p.family_name_kana, "") + func.coalesce(p.given_name_kana, "")
    conds.append(_lower_contains(kana, kata.replace(" ", "").replace("\u3000", "")))
    conds.append(p.id.in_(select(pe.person_id).where(pe.email.contains(low, autoescape=True))))
    digits = _NOT_DIGIT.sub("", q)
    if len(digits) >= 4:
        conds.append(p.id.in_(select(pp.person_id).where(pp.phone.contains(digits.lstrip("0")))))
    org = or_(_lower_contains(o.name, low), o.name_normalized.contains(normalize_org_name(q)))
    conds.append(p.organization_id.in_(select(o.id).where(org)))
    toks = reading_tokens(q)
    if toks:
        f = t.table(ids.IdentityFeature).c
        data = cast(f.data, String)
        conds.append(
            p.id.in_(
                select(f.record_id).where(
                    f.entity == "person",
                    and_(*[data.contains(f'"{tok}', autoescape=True) for tok in toks[:4]]),
                )
            )
        )
    return or_(*conds)


def search(
    conn: Connection, viewer: Viewer, query: str = "", limit: int = 50, offset: int = 0
) -> list[CustomerRow]:
    """Customers the viewer may see that match ``query`` (all of them when it is blank)."""
    p = t.table(t.Person).c
    cid = scope.cluster_of(p.id).label("cid")
    conds = [p.deleted_at.is_(None), scope.person_rows(viewer)]
    if query.strip():
        conds.append(matches(query))
    limit = max(1, min(limit, MAX_ROWS))
    found = select(cid).where(*conds).distinct().order_by(cid).limit(limit).offset(max(0, offset))
    return describe(conn, [int(c) for (c,) in conn.execute(found)])


def describe(conn: Connection, cluster_ids: list[int]) -> list[CustomerRow]:
    """One display row per customer: its first record, with the company and record count."""
    if not cluster_ids:
        return []
    p, o = t.table(t.Person).c, t.table(t.Organization).c
    m = t.table(ids.IdentityMember).c
    sizes: dict[int, int] = dict(
        conn.execute(
            select(m.cluster_id, func.count())
            .where(m.entity == "person", m.cluster_id.in_(cluster_ids))
            .group_by(m.cluster_id)
        ).all()
    )
    rows = conn.execute(
        select(
            p.id,
            p.record_key,
            p.full_name,
            p.family_name,
            p.given_name,
            p.family_name_kana,
            p.given_name_kana,
            p.primary_email,
            o.name.label("company"),
        )
        .outerjoin(t.table(t.Organization), o.id == p.organization_id)
        .where(p.id.in_(cluster_ids))
    ).all()
    by_id = {int(r.id): r for r in rows}
    out: list[CustomerRow] = []
    for c in cluster_ids:
        r = by_id.get(c)
        if r is None:
            continue
        name = r.full_name or " ".join(x for x in (r.family_name, r.given_name) if x)
        kana = " ".join(x for x in (r.family_name_kana, r.given_name_kana) if x)
        out.append(
            CustomerRow(
                c, r.record_key, name or "—", kana, r.primary_email, r.company, sizes.get(c, 1)
            )
        )
    return out


def view(
    conn: Connection,
    viewer: Viewer,
    cluster_id: int,
    rules: survivorship.SurvivorshipRules | None = None,
    phone_region: str = "JP",
) -> tuple[admin.Customer360, dict[int, list[dict[str, Any]]]] | None:
    """The 360 view as the viewer may see it, with each visible deal's stage history; None
    when the customer does not exist or is not the viewer's to see (the two look the same)."""
    cluster_id = graph.resolve_id(conn, "person", cluster_id)  # a member's or a merged id
    if not scope.customer_visible(conn, viewer, cluster_id):
        return None
    v = admin.customer_360(
        conn,
        cluster_id,
        rules,
        activity_limit=50,
        phone_region=phone_region,
        activities_where=scope.activities(viewer),
        deals_where=scope.deals(viewer),
    )
    h = t.table(t.DealStageHistory).c
    history: dict[int, list[dict[str, Any]]] = {}
    deal_ids = [int(d["id"]) for d in v.deals]
    if deal_ids:
        for r in conn.execute(
            select(h.deal_id, h.stage, h.entered_at)
            .where(h.deal_id.in_(deal_ids))
            .order_by(h.deal_id, h.entered_at, h.id)
        ):
            history.setdefault(int(r.deal_id), []).append(dict(r._mapping))
    return v, history
