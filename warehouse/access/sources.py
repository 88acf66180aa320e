"""What the Sources page shows an admin: each stream's cursor, last run and quarantine.

Read from the tables the write path keeps (``sync_state``, ``sync_run``, ``quarantine``):
one row per stream with its newest run, and the open quarantine entries with the reason and
the file (and row) to fix. Bounded: at most ``MAX_QUARANTINE`` entries per page.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, desc, func, select

from warehouse import schema as t

MAX_QUARANTINE = 200


def streams(conn: Connection) -> list[dict[str, Any]]:
    """Every stream with a cursor or a run: cursor, last run's status and counts, open
    quarantine count."""
    st, run, q = t.table(t.SyncState), t.table(t.SyncRun), t.table(t.Quarantine)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in conn.execute(select(st).order_by(st.c.connector, st.c.stream)):
        out[(r.connector, r.stream)] = {
            "connector": r.connector,
            "stream": r.stream,
            "cursor": r.cursor,
            "cursor_at": r.updated_at,
            "run": None,
            "quarantined": 0,
        }
    newest = (
        select(run.c.connector, run.c.stream, func.max(run.c.id).label("id"))
        .group_by(run.c.connector, run.c.stream)
        .subquery()
    )
    for r in conn.execute(select(run).join(newest, newest.c.id == run.c.id)):
        row = out.setdefault(
            (r.connector, r.stream),
            {
                "connector": r.connector,
                "stream": r.stream,
                "cursor": None,
                "cursor_at": None,
                "quarantined": 0,
            },
        )
        row["run"] = dict(r._mapping)
    for connector, stream, n in conn.execute(
        select(q.c.connector, q.c.stream, func.count())
        .where(q.c.resolved_at.is_(None))
        .group_by(q.c.connector, q.c.stream)
    ):
        if (connector, stream) in out:
            out[(connector, stream)]["quarantined"] = int(n)
    return [out[k] for k in sorted(out)]


def quarantine(conn: Connection, limit: int = MAX_QUARANTINE) -> list[dict[str, Any]]:
    """Open quarantine entries, newest first: where, why, and the file to fix (no payload)."""
    q = t.table(t.Quarantine)
    return [
        dict(r._mapping)
        for r in conn.execute(
            select(q.c.connector, q.c.stream, q.c.source_id, q.c.reason, q.c.path, q.c.created_at)
            .where(q.c.resolved_at.is_(None))
            .order_by(desc(q.c.created_at), desc(q.c.id))
            .limit(max(1, min(limit, MAX_QUARANTINE)))
        )
    ]
