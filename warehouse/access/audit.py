"""The audit log: who viewed or changed what, appended in the same transaction as the change.

A view is logged for the records that matter (a customer's 360, an export, a report) rather
than for every static asset; a change is logged with the target it touched. The detail is a
short plain sentence and never holds a password, a token or a session.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, desc, select

from warehouse import schema as t
from warehouse.access.schema import AuditLog
from warehouse.access.scope import Viewer
from warehouse.state import now

MAX_DETAIL = 2000


def record(
    conn: Connection,
    who: Viewer | str,
    action: str,
    target: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one line; ``who`` is a viewer or, before sign-in, the address that was typed."""
    staff_id = who.staff_id if isinstance(who, Viewer) else None
    actor = who.email if isinstance(who, Viewer) else who
    conn.execute(
        t.table(AuditLog)
        .insert()
        .values(
            at=now(),
            staff_user_id=staff_id,
            actor=actor[:320],
            action=action[:40],
            target=target[:200] if target else None,
            detail=detail[:MAX_DETAIL] if detail else None,
        )
    )


def recent(conn: Connection, limit: int = 100, staff_id: int | None = None) -> list[dict[str, Any]]:
    a = t.table(AuditLog)
    q = select(a.c.at, a.c.actor, a.c.action, a.c.target, a.c.detail).order_by(
        desc(a.c.at), desc(a.c.id)
    )
    if staff_id is not None:
        q = q.where(a.c.staff_user_id == staff_id)
    return [dict(r._mapping) for r in conn.execute(q.limit(max(1, min(limit, 1000))))]
