"""Match evidence: the pairs the resolver scored, kept with their method, score and fields.

People and organizations write their evidence here alike; a pair a person already decided
(accepted or rejected in the review queue) keeps that decision whatever a later run finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete
from sqlalchemy.dialects import postgresql, sqlite

from warehouse import schema as t
from warehouse.identity import schema as ids
from warehouse.identity.keys.matching import Decision
from warehouse.write.upsert import chunks

X = t.table(ids.IdentityMatch)


def save_matches(
    conn: Connection, decisions: Sequence[Decision], ts: datetime, entity: str = "person"
) -> None:
    """Upsert evidence; a pair a person already decided (accepted/rejected) keeps its decision."""
    uniq: dict[tuple[int, int], Decision] = {}
    for d in decisions:
        uniq[(d.a, d.b)] = d
    rows = [
        {
            "entity": entity,
            "a_id": d.a,
            "b_id": d.b,
            "method": d.method,
            "score": d.score,
            "fields": d.fields,
            "decision": d.decision,
            "created_at": ts,
            "updated_at": ts,
        }
        for d in uniq.values()
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for part in chunks(rows, 3000):
        stmt = dialect.insert(X)
        stmt = stmt.on_conflict_do_update(
            index_elements=["entity", "a_id", "b_id"],
            set_={
                c: stmt.excluded[c] for c in ("method", "score", "fields", "decision", "updated_at")
            },
            where=(X.c.decision == "merge") | (X.c.decision == "review"),
        )
        conn.execute(stmt, list(part))


def drop_stale_matches(conn: Connection, before: datetime) -> int:
    """After a full run: machine evidence the run did not find again no longer holds."""
    res = conn.execute(
        delete(X).where(
            X.c.entity == "person", X.c.decision.in_(("merge", "review")), X.c.updated_at < before
        )
    )
    return int(res.rowcount or 0)


# -- cluster ---------------------------------------------------------------------------------
