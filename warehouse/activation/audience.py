"""Who the push side talks to: the one place that says which rows are "people".

Identity resolution may later merge person rows into clusters; segments, consent and the
delivery ledger reach people only through :func:`people` and :func:`is_live`, so that change
is a swap here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, select

from warehouse import schema as t


def people() -> Table:
    """The table whose ``id`` is a person id for segments, consent and the ledger."""
    return t.table(t.Person)


def is_live(p: Table) -> ColumnElement[bool]:
    """A person row that may be addressed (not deleted)."""
    return p.c.deleted_at.is_(None)


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
