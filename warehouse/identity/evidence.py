"""Match evidence: the pairs the resolver scored, kept with their method, score and fields,
and the people's clusters they make.

People and organizations write their evidence here alike; a pair a person already decided
(accepted or rejected in the review queue) keeps that decision whatever a later run finds.
A full run clusters every person again from the edges (``cluster_all``), an incremental run
and an admin's decision only around the rows they touched (``recluster``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select

from warehouse import schema as t
from warehouse.identity import graph
from warehouse.identity import schema as ids
from warehouse.identity.blocking import ENTITY, IN_CHUNK, F, tune
from warehouse.identity.keys.matching import Decision
from warehouse.write.bulk import bound, put_rows
from warehouse.write.upsert import chunks

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


def drop_machine_evidence(conn: Connection, record_ids: Sequence[int]) -> None:
    """Merge and review evidence touching rows that are gone (a person's decisions stay).
    Asked per side, each by its own index: with ``a IN … OR b IN …`` and the decision in
    SQL, SQLite scanned every merge and review of the entity by the decision index."""
    doomed: set[int] = set()
    for side in (X.c.a_id, X.c.b_id):
        for part in chunks(sorted(record_ids), IN_CHUNK):
            doomed.update(
                int(mid)
                for mid, decision in conn.execute(
                    select(X.c.id, X.c.decision).where(X.c.entity == ENTITY, side.in_(part))
                )
                if decision in ("merge", "review")
            )
    for part in chunks(sorted(doomed), IN_CHUNK):
        conn.execute(delete(X).where(X.c.id.in_(part)))


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


# -- the people's clusters ---------------------------------------------------------------


def cluster_all(
    conn: Connection, ts: datetime, found: Sequence[Decision] | None = None
) -> set[int]:
    """Rebuild every cluster from the stored edges and pins, writing only what changed.

    A full run in one process hands over the decisions it just saved (``found``): its
    merges are edges as they are, only the pairs people decided are read."""
    tune(conn)
    edges: list[graph.Edge]
    if found is None:
        edges = [
            (int(a), int(b), "manual" if dec == "accepted" else m, float(s), int(i))
            for a, b, m, s, i, dec in conn.execute(
                select(X.c.a_id, X.c.b_id, X.c.method, X.c.score, X.c.id, X.c.decision).where(
                    X.c.entity == ENTITY, X.c.decision.in_(graph.MERGING)
                )
            )
        ]
        live = {int(r) for (r,) in conn.execute(select(F.c.record_id).where(F.c.entity == ENTITY))}
        edges = [e for e in edges if e[0] in live and e[1] in live]
    else:
        # The run's merges join rows it prepared; an accepted pair's rows may be gone.
        edges, accepted = merging_edges(conn, found)
        live = set()
        for part in chunks(sorted({n for e in accepted for n in e[:2]}), IN_CHUNK):
            live.update(
                int(r)
                for (r,) in conn.execute(
                    select(F.c.record_id).where(F.c.entity == ENTITY, F.c.record_id.in_(part))
                )
            )
        edges += [e for e in accepted if e[0] in live and e[1] in live]
    nodes = {e[0] for e in edges} | {e[1] for e in edges}
    # Scored links were already checked against chaining by the learned scorer's guard.
    new = graph.cluster_edges(nodes, edges, graph.all_pins(conn, ENTITY))
    old = {
        int(r): int(c)
        for r, c in conn.execute(
            select(graph.M.c.record_id, graph.M.c.cluster_id).where(graph.M.c.entity == ENTITY)
        )
    }
    for r in old:
        new.setdefault(r, r)
    return graph.write_membership(conn, ENTITY, old, new, edges, ts)


def recluster(conn: Connection, seeds: Iterable[int]) -> set[int]:
    return graph.recluster(conn, ENTITY, seeds)


def cluster_around(conn: Connection, decisions: Sequence[Decision], ts: datetime) -> set[int]:
    seeds = {d.a for d in decisions if d.decision == "merge"} | {
        d.b for d in decisions if d.decision == "merge"
    }
    return recluster(conn, seeds) if seeds else set()
