"""Visibility scopes in one place: which customers, deals and activities a person may see.

Every page, search, export and report asks here, as a SQL condition added to its own query,
never as a check after the rows are read: a row the viewer may not see is never fetched, so a
forgotten ``if`` cannot leak it. The rule per role is a ``role_scope`` row an admin sets
(defaults: rep → own, manager → team, admin → all):

- ``own``: rows owned by the viewer; ``team``: rows owned by anyone in the viewer's team;
  ``all``: everything, unowned rows included (only ``all`` sees rows nobody owns).
- A **customer** (a person cluster) is visible when any of its records, or that record's
  company, is owned by someone the viewer covers.
- A **company** is visible when it is owned by someone covered, or a covered staff user owns
  one of its people.
- A **deal** is visible when its owner is covered.
- An **activity** is visible when a covered staff user took part (a mail, a meeting, the
  author of a note), when its deal is visible, or when it is a note about a visible customer
  (情報共有: the team sees what a teammate wrote).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, exists, func, or_, select, true

from kizuna.errors import ConfigError
from warehouse import schema as t
from warehouse.access.schema import RoleScope, StaffAccount
from warehouse.identity import schema as ids

ROLES = ("rep", "manager", "admin")
SCOPES = ("own", "team", "all")
DEFAULT_SCOPE = {"rep": "own", "manager": "team", "admin": "all"}


@dataclass(frozen=True)
class Viewer:
    """Who is asking, with the owners whose rows they may see (None: everyone's)."""

    staff_id: int | None
    email: str
    name: str | None
    role: str
    team_id: int | None
    scope: str
    owners: frozenset[int] | None

    @property
    def label(self) -> str:
        return self.name or self.email

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


SYSTEM = Viewer(None, "system", None, "admin", None, "all", None)
"""The CLI's default (``--as`` not given): an admin who sees everything."""


def scope_of(conn: Connection, role: str) -> str:
    got = conn.execute(select(RoleScope.scope).where(RoleScope.role == role)).scalar()
    return str(got) if got in SCOPES else DEFAULT_SCOPE.get(role, "own")


def scopes(conn: Connection) -> dict[str, str]:
    return {r: scope_of(conn, r) for r in ROLES}


def viewer_for(conn: Connection, staff_id: int) -> Viewer | None:
    """The viewer a signed-in staff user is, read fresh (a role change applies at once)."""
    s, acc = t.table(t.StaffUser), StaffAccount
    row = conn.execute(
        select(s.c.id, s.c.email, s.c.name, s.c.team_id, acc.role)
        .join(acc, acc.staff_user_id == s.c.id)
        .where(s.c.id == staff_id)
    ).first()
    if row is None:
        return None
    scope = scope_of(conn, row.role)
    owners: frozenset[int] | None
    if scope == "all":
        owners = None
    elif scope == "team" and row.team_id is not None:
        mates = conn.execute(select(s.c.id).where(s.c.team_id == row.team_id)).scalars()
        owners = frozenset(int(i) for i in mates) | {int(row.id)}
    else:
        owners = frozenset({int(row.id)})
    return Viewer(int(row.id), row.email, row.name, row.role, row.team_id, scope, owners)


def viewer_by_email(conn: Connection, email: str) -> Viewer:
    """The viewer a CLI command runs as (``--as``); an address without an account is an error."""
    s = t.table(t.StaffUser)
    sid = conn.execute(
        select(s.c.id).where(func.lower(s.c.email) == email.strip().lower())
    ).scalar()
    got = viewer_for(conn, int(sid)) if sid is not None else None
    if got is None:
        raise ConfigError(
            f"{email!r} has no account", field="--as", fix="add one with `kizuna users add`"
        )
    return got


def visible_records(conn: Connection, viewer: Viewer) -> set[int] | None:
    """Ids of the person records the viewer may see (None: all); a customer is visible when
    any of its records is, so an export keeps a customer whose member ids meet this set."""
    if viewer.owners is None:
        return None
    p = t.table(t.Person).c
    return {int(i) for (i,) in conn.execute(select(p.id).where(person_rows(viewer)))}


def owned(viewer: Viewer, column: ColumnElement[int | None]) -> ColumnElement[bool]:
    """``column`` (an owner id) is someone the viewer covers."""
    if viewer.owners is None:
        return true()
    return column.in_(sorted(viewer.owners))


def person_rows(viewer: Viewer) -> ColumnElement[bool]:
    """Condition on ``person``: the record or its company is owned by a covered staff user."""
    p, o = t.table(t.Person).c, t.table(t.Organization).c
    if viewer.owners is None:
        return true()
    by_org = select(o.id).where(owned(viewer, o.owner_id))
    return or_(owned(viewer, p.owner_id), p.organization_id.in_(by_org))


def organization_rows(viewer: Viewer) -> ColumnElement[bool]:
    """Condition on ``organization``: owned by a covered staff user, or the company of a
    customer record the viewer may see (the 360 view shows it already)."""
    p, o = t.table(t.Person).c, t.table(t.Organization).c
    if viewer.owners is None:
        return true()
    of_people = select(p.organization_id).where(
        p.organization_id.is_not(None), owned(viewer, p.owner_id)
    )
    return or_(owned(viewer, o.owner_id), o.id.in_(of_people))


def cluster_of(person_id: ColumnElement[int]) -> ColumnElement[int]:
    """The customer (cluster) id of a person record, as SQL."""
    m = t.table(ids.IdentityMember).c
    sub = (
        select(m.cluster_id).where(m.entity == "person", m.record_id == person_id).scalar_subquery()
    )
    return func.coalesce(sub, person_id)


def records_of_visible_customers(conn: Connection, viewer: Viewer) -> set[int] | None:
    """Ids of every live person record whose customer the viewer may see (None: all), for
    lists built from record ids (a segment's members) that must show a whole customer."""
    if viewer.owners is None:
        return None
    p = t.table(t.Person).c
    q = select(p.id).where(p.deleted_at.is_(None), cluster_of(p.id).in_(visible_customers(viewer)))
    return {int(i) for i in conn.execute(q).scalars()}


def visible_customers(viewer: Viewer) -> Select[Any]:
    """Cluster ids of every customer the viewer may see (live records only)."""
    p = t.table(t.Person).c
    return select(cluster_of(p.id)).where(p.deleted_at.is_(None), person_rows(viewer))


def customer_visible(conn: Connection, viewer: Viewer, cluster_id: int) -> bool:
    p = t.table(t.Person).c
    q = select(p.id).where(
        cluster_of(p.id) == cluster_id, p.deleted_at.is_(None), person_rows(viewer)
    )
    return conn.execute(q.limit(1)).first() is not None


def deals(viewer: Viewer) -> ColumnElement[bool]:
    """Condition on ``deal``."""
    return owned(viewer, t.table(t.Deal).c.owner_id)


def activities(viewer: Viewer) -> ColumnElement[bool]:
    """Condition on ``activity``."""
    if viewer.owners is None:
        return true()
    a, ap, d = t.table(t.Activity).c, t.table(t.ActivityParticipant).c, t.table(t.Deal).c
    took_part = exists().where(ap.activity_id == a.id, owned(viewer, ap.staff_user_id))
    by_deal = a.deal_id.in_(select(d.id).where(owned(viewer, d.owner_id)))
    note = and_(
        a.kind == "note",
        exists().where(
            ap.activity_id == a.id,
            ap.person_id.is_not(None),
            cluster_of(ap.person_id).in_(visible_customers(viewer)),
        ),
    )
    return or_(took_part, by_deal, note)


def staff(viewer: Viewer) -> ColumnElement[bool]:
    """Condition on ``staff_user``: whose reports and pipeline rows the viewer may read."""
    return owned(viewer, t.table(t.StaffUser).c.id)
