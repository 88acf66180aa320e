"""Who the push side talks to: the one place that says which rows are "people".

Every source record is its own person row and identity resolution links them into
customers (clusters). Push works per customer: a segment's rows become their customers
(:func:`customers`, one representative row each: the cluster id, its smallest member), and
consent, suppression, frequency caps and the ledger look at every record of the customer
(:func:`members`). Ledger rows stay keyed by the record that was mailed and are read through
the current clusters, so a merge or a split re-maps them without rewriting a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, select

from warehouse import schema as t
from warehouse.identity import schema as ids_


def people() -> Table:
    """The table whose ``id`` is a person id for segments, consent and the ledger."""
    return t.table(t.Person)


def is_live(p: Table) -> ColumnElement[bool]:
    """A person row that may be addressed (not deleted)."""
    return p.c.deleted_at.is_(None)


def customer_of(conn: Connection, person_ids: Sequence[int]) -> dict[int, int]:
    """Each person row → its customer's representative row (itself when unlinked)."""
    m = t.table(ids_.IdentityMember)
    ids = list(dict.fromkeys(int(i) for i in person_ids))
    out = {i: i for i in ids}
    for i in range(0, len(ids), 900):
        q = select(m.c.record_id, m.c.cluster_id).where(
            m.c.entity == "person", m.c.record_id.in_(ids[i : i + 900])
        )
        out.update({int(r): int(c) for r, c in conn.execute(q)})
    return out


def customers(conn: Connection, person_ids: Sequence[int]) -> list[int]:
    """The customers of the given rows, one representative each, in first-seen order."""
    of = customer_of(conn, person_ids)
    return list(dict.fromkeys(of[int(i)] for i in person_ids))


def members(conn: Connection, person_ids: Sequence[int]) -> dict[int, list[int]]:
    """Each given row → every row of its customer (itself first), deleted ones included."""
    of = customer_of(conn, person_ids)
    m = t.table(ids_.IdentityMember)
    reps = sorted(set(of.values()))
    by_rep: dict[int, list[int]] = {}
    for i in range(0, len(reps), 900):
        q = select(m.c.record_id, m.c.cluster_id).where(
            m.c.entity == "person", m.c.cluster_id.in_(reps[i : i + 900])
        )
        for r, c in conn.execute(q):
            by_rep.setdefault(int(c), []).append(int(r))
    out: dict[int, list[int]] = {}
    for pid, rep in of.items():
        rest = sorted(set(by_rep.get(rep, [])) - {pid})
        out[pid] = [pid, *rest]
    return out


def utc(ts: datetime) -> datetime:
    """Datetimes bound to queries are UTC: SQLite keeps only the wall time of what it stores."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def profiles(conn: Connection, person_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """What templates may show about each person: their fields, organization and owner."""
    p = people()
    o = t.table(t.Organization)
    s = t.table(t.StaffUser)
    out: dict[int, dict[str, Any]] = {}
    ids = list(dict.fromkeys(person_ids))
    for i in range(0, len(ids), 900):
        q = (
            select(
                p,
                o.c.name.label("org_name"),
                o.c.industry.label("org_industry"),
                o.c.address.label("org_address"),
                o.c.attributes.label("org_attributes"),
                s.c.name.label("owner_name"),
                s.c.email.label("owner_email"),
            )
            .select_from(
                p.outerjoin(o, o.c.id == p.c.organization_id).outerjoin(s, s.c.id == p.c.owner_id)
            )
            .where(p.c.id.in_(ids[i : i + 900]))
        )
        for row in conn.execute(q):
            m = dict(row._mapping)
            out[int(m["id"])] = m
    return out
