"""Match evidence: the pairs the resolver scored, kept with their method, score and fields.

People and organizations write their evidence here alike; a pair a person already decided
(accepted or rejected in the review queue) keeps that decision whatever a later run finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select

from warehouse import schema as t
from warehouse.identity import graph
from warehouse.identity import schema as ids
from warehouse.identity.keys.matching import Decision
from warehouse.write.bulk import bound, put_rows

X = t.table(ids.IdentityMatch)


_COLUMNS = (
    "entity",
    "a_id",
    "b_id",
    "method",
    "score",
    "fields",
    "decision",
    "created_at",
    "updated_at",
)
_INSERT = (
    f"INSERT INTO identity_match ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
)
_UNLESS_DECIDED = (
    " ON CONFLICT (entity, a_id, b_id) DO UPDATE SET method = excluded.method,"
    " score = excluded.score, fields = excluded.fields, decision = excluded.decision,"
    " updated_at = excluded.updated_at WHERE identity_match.decision IN ('merge', 'review')"
)


def save_matches(
    conn: Connection, decisions: Sequence[Decision], ts: datetime, entity: str = "person"
) -> None:
    """Upsert evidence; a pair a person already decided (accepted/rejected) keeps its decision.

    A full run saves a hundred thousand pairs: they go through one prepared statement as
    tuples, each ``fields`` turned into JSON once, the timestamp converted once. Into an
    entity without any evidence yet (a first or from-scratch run) nothing can conflict, so the
    rows are plainly inserted (on PostgreSQL by ``COPY``)."""
    uniq = {(d.a, d.b): d for d in decisions}
    stamp = bound(conn, X.c.updated_at)(ts)
    as_json = _json_text if conn.dialect.name == "sqlite" else bound(conn, X.c.fields)
    rows = [
        (entity, a, b, d.method, d.score, as_json(d.fields), d.decision, stamp, stamp)
        for (a, b), d in uniq.items()
    ]
    if not rows:
        return
    fresh = graph.no_rows(conn, X, entity)  # ids in row order either way
    put_rows(conn, X, _COLUMNS, _INSERT if fresh else _INSERT + _UNLESS_DECIDED, rows, fresh)


def _json_text(fields: dict[str, Any]) -> str:
    """Evidence (names → bits, a reason) as SQLite stores JSON, by ``orjson``: the standard
    library's encoder was half of saving a million people's evidence (1.9 of 3.8 s)."""
    return orjson.dumps(fields).decode()


def drop_stale_matches(conn: Connection, before: datetime) -> int:
    """After a full run: machine evidence the run did not find again no longer holds."""
    res = conn.execute(
        delete(X).where(
            X.c.entity == "person", X.c.decision.in_(("merge", "review")), X.c.updated_at < before
        )
    )
    return int(res.rowcount or 0)


# -- cluster ---------------------------------------------------------------------------------


def merging_edges(
    conn: Connection, found: Sequence[Decision], entity: str = "person"
) -> tuple[list[graph.Edge], list[graph.Edge]]:
    """The merging edges as the evidence stands once a full run saved ``found`` and dropped
    what it did not find again, without reading its hundred thousand rows back: the run's
    merges (their match ids left to ``write_membership``) but for pairs a person decided,
    which keep their decision; and apart, every pair a person accepted (as ``manual``, with
    its stored score), whose rows may since have gone."""
    decided: set[tuple[int, int]] = set()
    accepted: list[graph.Edge] = []
    for a, b, s, i, dec in conn.execute(
        select(X.c.a_id, X.c.b_id, X.c.score, X.c.id, X.c.decision).where(
            X.c.entity == entity, X.c.decision.in_(("accepted", "rejected"))
        )
    ):
        decided.add((int(a), int(b)))
        if dec == "accepted":
            accepted.append((int(a), int(b), "manual", float(s), int(i)))
    uniq = {(d.a, d.b): d for d in found}
    machine: list[graph.Edge] = [
        (a, b, d.method, d.score, None)
        for (a, b), d in uniq.items()
        if d.decision == "merge" and (a, b) not in decided
    ]
    return machine, accepted
