"""What an admin does to the identity graph by hand, and the 360 view of one customer.

Every change here is recorded where later runs read it (a match row's decision, a pin), so a
rerun, incremental or from scratch, keeps what a person decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, desc, or_, select, true, update

from kizuna.errors import KizunaError
from warehouse import schema as t
from warehouse.identity import graph as graph
from warehouse.identity import survivorship
from warehouse.identity.crosswalk import entity_of, find_record
from warehouse.identity.keys.normalize import normalize_email, normalize_phone
from warehouse.state import now

ENTITY = "person"


Rules = survivorship.SurvivorshipRules | None


class IdentityError(KizunaError):
    """An admin command named something that does not exist or cannot be done."""


def find_customer(conn: Connection, ref: str) -> int:
    """A cluster id from an email address, a public id (``P-…``, current or merged), a person
    id or a merged (alias) id."""
    ref = ref.strip()
    if entity_of(ref) == ENTITY:
        hit = find_record(conn, ref)
        if hit is None:
            raise IdentityError(f"no customer with id {ref}")
        return graph.resolve_id(conn, ENTITY, hit[1])
    if "@" in ref:
        email = normalize_email(ref)
        row = None
        if email is not None:
            row = conn.execute(
                select(t.PersonEmail.person_id).where(t.PersonEmail.email == email)
            ).first()
        if row is None:
            raise IdentityError(f"no person has the address {ref!r}")
        return graph.resolve_id(conn, ENTITY, int(row[0]))
    if not ref.isdigit():
        raise IdentityError(
            f"{ref!r} is neither an email address nor a customer id (P-… or a number)"
        )
    cid = graph.resolve_id(conn, ENTITY, int(ref))
    if conn.execute(select(t.Person.id).where(t.Person.id == cid)).first() is None:
        raise IdentityError(f"no customer with id {ref}")
    return cid


def members(conn: Connection, cluster_id: int) -> list[int]:
    got = sorted(graph.members_of(conn, ENTITY, [cluster_id]))
    return got or [cluster_id]


@dataclass
class Customer360:
    id: int
    members: list[int]
    golden: dict[str, Any]
    emails: list[tuple[str, int]] = field(default_factory=list)
    phones: list[tuple[str, int]] = field(default_factory=list)
    organization: dict[str, Any] | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    deals: list[dict[str, Any]] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)
    aliases: list[int] = field(default_factory=list)
    public_id: str | None = None
    """The rebuild-stable id (``P-…``) the exports use."""


def customer_360(
    conn: Connection,
    cluster_id: int,
    rules: survivorship.SurvivorshipRules | None = None,
    activity_limit: int = 10,
    phone_region: str = "JP",
    activities_where: ColumnElement[bool] | None = None,
    deals_where: ColumnElement[bool] | None = None,
) -> Customer360:
    """Everything the company knows about one customer, across all its member rows.

    ``activities_where`` and ``deals_where`` narrow the timeline and the deals to what one
    viewer may see (``warehouse.access.scope``); without them, everything is shown.
    """
    ids = members(conn, cluster_id)
    cands = survivorship.candidates(conn, ids)
    gold = survivorship.golden(list(cands.values()), rules or survivorship.SurvivorshipRules())
    view = Customer360(cluster_id, ids, gold)
    keys = conn.execute(
        select(t.Person.record_key).where(t.Person.id.in_(ids), t.Person.record_key.is_not(None))
    ).scalars()
    view.public_id = min((k for k in keys if k), default=None)
    pe, pp = t.PersonEmail, t.PersonPhone
    view.emails = [
        (e, int(p))
        for e, p in conn.execute(
            select(pe.email, pe.person_id).where(pe.person_id.in_(ids)).order_by(pe.email)
        )
    ]
    phones: dict[str, int] = {}
    for ph, p in conn.execute(
        select(pp.phone, pp.person_id).where(pp.person_id.in_(ids)).order_by(pp.person_id)
    ):
        phones.setdefault(normalize_phone(ph, phone_region) or ph, int(p))
    view.phones = sorted(phones.items())
    org_id = gold.get("organization_id", {}).get("value")
    same: list[int] = []
    if org_id is not None:
        o = t.Organization
        oc = graph.resolve_id(conn, "organization", int(org_id))
        same = sorted(graph.members_of(conn, "organization", [oc])) or [oc]
        rows = conn.execute(
            select(o.id, o.name, o.domain, o.corporate_number).where(o.id.in_(same)).order_by(o.id)
        ).all()
        if rows:
            view.organization = dict(rows[0]._mapping)
            view.organization["also_known_as"] = [r.name for r in rows[1:]]
            for r in rows[1:]:
                for k in ("domain", "corporate_number"):
                    view.organization[k] = view.organization[k] or getattr(r, k)
    sr = t.SourceRecord
    view.sources = [
        dict(r._mapping)
        for r in conn.execute(
            select(sr.entity_id, sr.connector, sr.stream, sr.source_id, sr.first_seen, sr.last_seen)
            .where(sr.entity == ENTITY, sr.entity_id.in_(ids), sr.deleted_at.is_(None))
            .order_by(sr.connector, sr.stream, sr.source_id)
        )
    ]
    a, ap = t.Activity, t.ActivityParticipant
    view.activities = [
        dict(r._mapping)
        for r in conn.execute(
            select(a.id, a.kind, a.occurred_at, a.direction, a.subject)
            .where(
                a.id.in_(select(ap.activity_id).where(ap.person_id.in_(ids))),
                a.deleted_at.is_(None),
                true() if activities_where is None else activities_where,
            )
            .order_by(desc(a.occurred_at))
            .limit(activity_limit)
        )
    ]
    d = t.Deal
    deal_cond: ColumnElement[bool] = d.person_id.in_(ids)
    if same:  # deals of any record of the customer's company
        deal_cond = or_(deal_cond, d.organization_id.in_(same))
    view.deals = [
        dict(r._mapping)
        for r in conn.execute(
            select(d.id, d.name, d.stage, d.amount, d.currency, d.status, d.expected_close)
            .where(
                deal_cond, d.deleted_at.is_(None), true() if deals_where is None else deals_where
            )
            .order_by(desc(d.updated_at))
            .limit(20)
        )
    ]
    x = graph.X
    view.merges = [
        dict(r._mapping)
        for r in conn.execute(
            select(
                x.c.id,
                x.c.a_id,
                x.c.b_id,
                x.c.method,
                x.c.score,
                x.c.fields,
                x.c.decision,
                x.c.decided_by,
                x.c.updated_at,
            )
            .where(
                x.c.entity == ENTITY,
                or_(x.c.a_id.in_(ids), x.c.b_id.in_(ids)),
            )
            .order_by(x.c.id)
        )
    ]
    al = graph.A
    view.aliases = [
        int(r)
        for (r,) in conn.execute(
            select(al.c.alias_id).where(al.c.entity == ENTITY, al.c.cluster_id == cluster_id)
        )
    ]
    return view


def for_against(fields: dict[str, Any]) -> tuple[str, str]:
    """Evidence for a match (comparisons that added bits) and against it (that took bits
    away, or the clustering guard's reason for refusing the link)."""
    pro: list[str] = []
    con: list[str] = []
    for k, v in fields.items():
        if k == "bits" or not isinstance(v, int | float):
            continue
        (pro if v > 0 else con).append(f"{k} {v:+.1f}")
    if fields.get("refused"):
        con.insert(0, f"would join: {fields['refused']}")
    return ", ".join(pro), ", ".join(con)


def review_queue(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    x = graph.X
    p1, p2 = t.table(t.Person).alias("p1"), t.table(t.Person).alias("p2")
    rows = conn.execute(
        select(
            x.c.id,
            x.c.a_id,
            x.c.b_id,
            x.c.score,
            x.c.fields,
            p1.c.full_name.label("a_name"),
            p1.c.primary_email.label("a_email"),
            p2.c.full_name.label("b_name"),
            p2.c.primary_email.label("b_email"),
        )
        .join(p1, p1.c.id == x.c.a_id)
        .join(p2, p2.c.id == x.c.b_id)
        .where(x.c.entity == ENTITY, x.c.decision == "review")
        .order_by(desc(x.c.score), x.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


def _match(conn: Connection, match_id: int) -> tuple[int, int, str]:
    x = graph.X
    row = conn.execute(
        select(x.c.a_id, x.c.b_id, x.c.decision).where(x.c.id == match_id, x.c.entity == ENTITY)
    ).first()
    if row is None:
        raise IdentityError(f"no match with id {match_id} (see `kizuna review list`)")
    return int(row[0]), int(row[1]), str(row[2])


def accept(conn: Connection, match_id: int, by: str, rules: Rules = None) -> int:
    """Merge a reviewed pair; returns the cluster id they now share."""
    a, b, _ = _match(conn, match_id)
    x = graph.X
    conn.execute(
        update(x)
        .where(x.c.id == match_id)
        .values(decision="accepted", decided_by=by, updated_at=now())
    )
    # An earlier never-link between the two is lifted by an explicit acceptance.
    p = graph.P
    conn.execute(p.delete().where(p.c.entity == ENTITY, p.c.a_id == a, p.c.b_id == b))
    _recluster(conn, [a, b], rules)
    return graph.resolve_id(conn, ENTITY, a)


def reject(conn: Connection, match_id: int, by: str, rules: Rules = None) -> None:
    """Keep a reviewed pair apart, now and in every later run."""
    a, b, _ = _match(conn, match_id)
    x = graph.X
    conn.execute(
        update(x)
        .where(x.c.id == match_id)
        .values(decision="rejected", decided_by=by, updated_at=now())
    )
    graph.add_pins(conn, ENTITY, [(a, b)], "rejected", f"review {match_id} by {by}")
    _recluster(conn, [a, b], rules)


def never_link(
    conn: Connection, a: int, b: int, note: str | None = None, rules: Rules = None
) -> None:
    """Pin two person rows as never the same; undoes a merge that joined them."""
    for rid in (a, b):
        if conn.execute(select(t.Person.id).where(t.Person.id == rid)).first() is None:
            raise IdentityError(f"no person row with id {rid}")
    if a == b:
        raise IdentityError("a row cannot be pinned apart from itself")
    graph.add_pins(conn, ENTITY, [(a, b)], "never-link", note)
    _undecide(conn, [(min(a, b), max(a, b))])
    _recluster(conn, [a, b], rules)


def split(
    conn: Connection,
    cluster_id: int,
    out: Sequence[int],
    note: str | None = None,
    rules: Rules = None,
) -> int:
    """Move ``out`` (member row ids) out of a cluster; returns the cluster id they now form.

    The moved rows stay together (their pairs are accepted) and are pinned apart from the
    rows that remain, so no later run joins the two groups again.
    """
    ids = members(conn, cluster_id)
    moved = sorted(set(out))
    stray = [m for m in moved if m not in ids]
    if stray:
        raise IdentityError(
            f"{', '.join(map(str, stray))} not in customer {cluster_id} (members: "
            f"{', '.join(map(str, ids))})"
        )
    rest = [m for m in ids if m not in moved]
    if not rest:
        raise IdentityError("a split must leave at least one row in the customer")
    pairs = [(a, b) for a in moved for b in rest]
    graph.add_pins(conn, ENTITY, pairs, "split", note)
    _undecide(conn, [(min(a, b), max(a, b)) for a, b in pairs])
    ts = now()
    x = graph.X
    for i, a in enumerate(moved):
        for b in moved[i + 1 :]:
            got = conn.execute(
                update(x)
                .where(x.c.entity == ENTITY, x.c.a_id == a, x.c.b_id == b)
                .values(decision="accepted", decided_by="split", updated_at=ts)
            )
            if not got.rowcount:
                conn.execute(
                    x.insert().values(
                        entity=ENTITY,
                        a_id=a,
                        b_id=b,
                        method="manual",
                        score=1.0,
                        fields={},
                        decision="accepted",
                        decided_by="split",
                        created_at=ts,
                        updated_at=ts,
                    )
                )
    _recluster(conn, ids, rules)
    return graph.resolve_id(conn, ENTITY, moved[0])


def _undecide(conn: Connection, pairs: Sequence[tuple[int, int]]) -> None:
    """Pinned pairs lose any accepted decision (the pin is the newer word)."""
    x = graph.X
    for a, b in pairs:
        conn.execute(
            update(x)
            .where(x.c.entity == ENTITY, x.c.a_id == a, x.c.b_id == b, x.c.decision == "accepted")
            .values(decision="rejected", updated_at=now())
        )


def _recluster(conn: Connection, seeds: Sequence[int], rules: Rules) -> None:
    from warehouse.identity.evidence import recluster

    changed = recluster(conn, seeds)
    survivorship.refresh(conn, changed, rules or survivorship.SurvivorshipRules())
