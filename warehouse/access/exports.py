"""Exports as a viewer may see them: the crosswalk and the golden companies, narrowed by the
one scope (``scope.person_rows`` and ``scope.organization_rows``) before a line is written.

The golden customers export takes the visible record ids itself (``golden_export.customers``);
these two are built from public ids, so the visible records are turned into the public ids
of their customers and companies and a line is kept only when one of them is visible.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from warehouse import schema as t
from warehouse.access import scope
from warehouse.access.scope import Viewer
from warehouse.identity import crosswalk as cw
from warehouse.identity import golden_export as ge


def visible_public_ids(conn: Connection, viewer: Viewer) -> tuple[set[str], set[str]] | None:
    """Public ids (``P-…``, ``O-…``) of the customers and companies the viewer may see."""
    if viewer.owners is None:
        return None
    p, o = t.table(t.Person).c, t.table(t.Organization).c
    people, orgs = cw.public_ids(conn, "person"), cw.public_ids(conn, "organization")
    pids = conn.execute(select(p.id).where(scope.person_rows(viewer))).scalars()
    oids = conn.execute(select(o.id).where(scope.organization_rows(viewer))).scalars()
    return (
        {people[int(i)] for i in pids if int(i) in people},
        {orgs[int(i)] for i in oids if int(i) in orgs},
    )


def crosswalk(conn: Connection, viewer: Viewer) -> Iterator[dict[str, Any]]:
    """The crosswalk lines of visible customers, and of visible companies' own records."""
    seen = visible_public_ids(conn, viewer)
    for line in cw.rows(conn):
        if seen is None:
            yield line
        elif line["person_id"] is not None:
            if line["person_id"] in seen[0]:
                yield line
        elif line["organization_id"] in seen[1]:
            yield line


def organizations(conn: Connection, viewer: Viewer) -> Iterator[dict[str, Any]]:
    """The golden companies the viewer may see."""
    seen = visible_public_ids(conn, viewer)
    for row in ge.organizations(conn):
        if seen is None or row["organization_id"] in seen[1]:
            yield row
