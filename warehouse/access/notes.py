"""Notes on a customer that the team shares (情報共有), stored as activities.

A note is an ``activity`` of kind ``note`` with the author as a staff participant and the
customer as a person participant, so segments, reports and exports see it like any other
activity, and ``scope.activities`` lets everyone who may see the customer read it. Its
lineage row (connector ``web``, stream ``notes``) keeps where it came from.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, desc, select

from kizuna.errors import ConfigError
from warehouse import schema as t
from warehouse.access import scope
from warehouse.access.scope import Viewer
from warehouse.state import now

MAX_NOTE = 5000


class NoteError(ConfigError):
    """A note that cannot be saved (empty, too long, a customer the author cannot see)."""


def add(conn: Connection, viewer: Viewer, customer_id: int, text: str) -> int:
    """Save a note about a customer the viewer may see; returns the activity id."""
    body = text.replace("\r\n", "\n").strip()
    if not body:
        raise NoteError("the note is empty", fix="write something before saving")
    if len(body) > MAX_NOTE:
        raise NoteError("the note is too long", fix=f"keep it under {MAX_NOTE} characters")
    if not scope.customer_visible(conn, viewer, customer_id):
        raise NoteError("no such customer", fix="open the customer from the list")
    p = t.table(t.Person)
    email = conn.execute(select(p.c.primary_email).where(p.c.id == customer_id)).scalar()
    ts = now()
    key = f"web-note:{uuid.uuid4()}"
    a = t.table(t.Activity)
    first = body.split("\n", 1)[0]
    aid = int(
        conn.execute(
            a.insert()
            .values(
                key=key,
                kind="note",
                occurred_at=ts,
                subject=first[:200],
                snippet=body[:300],
                body=body,
                status="confirmed",
                revision=0,
                attributes={"author_id": viewer.staff_id, "customer_id": customer_id},
                created_at=ts,
                updated_at=ts,
                timeline=True,
            )
            .returning(a.c.id)
        ).scalar_one()
    )
    ap = t.table(t.ActivityParticipant)
    rows: list[dict[str, Any]] = [
        {
            "activity_id": aid,
            "email": email or "",
            "role": "about",
            "person_id": customer_id,
            "staff_user_id": None,
            "name": None,
        }
    ]
    if viewer.staff_id is not None:
        rows.append(
            {
                "activity_id": aid,
                "email": viewer.email,
                "role": "from",
                "person_id": None,
                "staff_user_id": viewer.staff_id,
                "name": viewer.name,
            }
        )
    conn.execute(ap.insert(), rows)
    conn.execute(
        t.table(t.SourceRecord)
        .insert()
        .values(
            connector="web",
            stream="notes",
            source_id=key,
            entity="activity",
            entity_id=aid,
            payload_hash=uuid.uuid5(uuid.NAMESPACE_URL, key).hex,
            first_seen=ts,
            last_seen=ts,
        )
    )
    return aid


def for_customer(
    conn: Connection, viewer: Viewer, members: list[int], limit: int = 50
) -> list[dict[str, Any]]:
    """Notes about any record of a customer, newest first, as far as the viewer may see."""
    a, ap = t.table(t.Activity), t.table(t.ActivityParticipant)
    author = ap.alias("author")
    s = t.table(t.StaffUser)
    q = (
        select(a.c.id, a.c.occurred_at, a.c.body, s.c.name, s.c.email)
        .outerjoin(author, (author.c.activity_id == a.c.id) & (author.c.role == "from"))
        .outerjoin(s, s.c.id == author.c.staff_user_id)
        .where(
            a.c.kind == "note",
            a.c.deleted_at.is_(None),
            a.c.id.in_(select(ap.c.activity_id).where(ap.c.person_id.in_(members))),
            scope.activities(viewer),
        )
        .order_by(desc(a.c.occurred_at), desc(a.c.id))
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(q)]
