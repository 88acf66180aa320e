"""The identity graph: clusters from match edges, respecting pins, with stable ids and aliases.

A cluster's id is its smallest member id. Edges are applied strongest first (rules, then
human acceptances, then scores high to low, ties by ids), and an edge that would join two rows
an admin pinned apart is skipped, so the outcome depends only on the edges and pins, never
on the order the store or the run saw the rows in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, update

from warehouse.identity import schema as ids
from warehouse.schema import table
from warehouse.state import now
from warehouse.write.upsert import chunks, upsert

IN_CHUNK = 900
MERGING = ("merge", "accepted")
_STRENGTH = {"rule": 0, "manual": 1, "score": 2}

M = table(ids.IdentityMember)
A = table(ids.IdentityAlias)
X = table(ids.IdentityMatch)
P = table(ids.IdentityPin)
C = table(ids.IdentityCluster)

Edge = tuple[int, int, str, float, int | None]  # a, b, method, score, match id


Boxes = dict[int, frozenset[str]]
BoxLoader = Callable[[Connection, set[int]], Boxes]


def _conflict(a: frozenset[str], b: frozenset[str]) -> bool:
    """Different mailboxes at one company domain and none in common: two people."""
    if not a or not b or a & b:
        return False
    da = {e.rpartition("@")[2] for e in a}
    return any(e.rpartition("@")[2] in da for e in b)


class _UF:
    def __init__(self, pins: dict[int, set[int]], boxes: Boxes | None = None) -> None:
        self.parent: dict[int, int] = {}
        self.pinned: dict[int, set[int]] = {}
        self.pins = pins
        self.boxes: dict[int, frozenset[str]] = dict(boxes or {})

    def find(self, x: int) -> int:
        p = self.parent.setdefault(x, x)
        if p != x:
            root = self.find(p)
            self.parent[x] = root
            return root
        return x

    def _pinned(self, root: int) -> set[int]:
        got = self.pinned.get(root)
        if got is None:
            got = set(self.pins.get(root, ()))
            self.pinned[root] = got
        return got

    def union(self, a: int, b: int, checked: bool) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        pa, pb = self._pinned(ra), self._pinned(rb)
        if any(self.find(x) == rb for x in pa) or any(self.find(x) == ra for x in pb):
            return False
        ba, bb = self.boxes.get(ra, frozenset()), self.boxes.get(rb, frozenset())
        if checked and _conflict(ba, bb):
            return False
        keep, gone = (ra, rb) if ra < rb else (rb, ra)
        self.parent[gone] = keep
        self.pinned[keep] = pa | pb
        self.pinned.pop(gone, None)
        if ba or bb:
            self.boxes[keep] = ba | bb
        return True


def _edge_order(e: Edge) -> tuple[int, float, int, int]:
    a, b, method, score, _ = e
    kind = "rule" if method.startswith("rule") else "manual" if method == "manual" else "score"
    return (_STRENGTH[kind], -score, a, b)


def cluster_edges(
    nodes: Iterable[int],
    edges: Iterable[Edge],
    pins: Iterable[tuple[int, int]],
    boxes: Boxes | None = None,
) -> dict[int, int]:
    """record id → cluster id (smallest member) for every node touched.

    Pinned rows are never joined; a scored edge (not a rule or a person's decision) is
    also refused when it would put two different mailboxes of one company domain in one
    cluster: namesakes at one company must not chain together through a third record.
    """
    pin_map: dict[int, set[int]] = {}
    for a, b in pins:
        pin_map.setdefault(a, set()).add(b)
        pin_map.setdefault(b, set()).add(a)
    uf = _UF(pin_map, boxes)
    for n in nodes:
        uf.find(n)
    for a, b, method, *_ in sorted(edges, key=_edge_order):
        uf.union(a, b, checked=method == "score")
    return {n: uf.find(n) for n in list(uf.parent)}


def _in(conn: Connection, stmt_for: Any, values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for part in chunks(sorted(set(values)), IN_CHUNK):
        out.extend(conn.execute(stmt_for(part)).all())
    return out


def membership(conn: Connection, entity: str, record_ids: Iterable[int]) -> dict[int, int]:
    """Current cluster of each given row (rows without a member row are their own)."""
    rows = _in(
        conn,
        lambda part: select(M.c.record_id, M.c.cluster_id).where(
            M.c.entity == entity, M.c.record_id.in_(part)
        ),
        record_ids,
    )
    return {int(r): int(c) for r, c in rows}


def members_of(conn: Connection, entity: str, cluster_ids: Iterable[int]) -> dict[int, int]:
    rows = _in(
        conn,
        lambda part: select(M.c.record_id, M.c.cluster_id).where(
            M.c.entity == entity, M.c.cluster_id.in_(part)
        ),
        cluster_ids,
    )
    return {int(r): int(c) for r, c in rows}


def resolve_id(conn: Connection, entity: str, any_id: int) -> int:
    """The current cluster id for any id ever handed out (a row id or a merged cluster id)."""
    got = membership(conn, entity, [any_id]).get(any_id)
    if got is not None:
        return got
    seen = {any_id}
    cur = any_id
    while True:
        row = conn.execute(
            select(A.c.cluster_id).where(A.c.entity == entity, A.c.alias_id == cur)
        ).first()
        if row is None or int(row[0]) in seen:
            return cur
        cur = int(row[0])
        seen.add(cur)
        got = membership(conn, entity, [cur]).get(cur)
        if got is not None:
            return got


def edges_among(conn: Connection, entity: str, record_ids: Iterable[int]) -> list[Edge]:
    """Merging edges touching the given rows."""
    idset = set(record_ids)
    rows = _in(
        conn,
        lambda part: select(X.c.a_id, X.c.b_id, X.c.method, X.c.score, X.c.id, X.c.decision).where(
            X.c.entity == entity,
            X.c.decision.in_(MERGING),
            or_(X.c.a_id.in_(part), X.c.b_id.in_(part)),
        ),
        idset,
    )
    out: dict[int, Edge] = {}
    for a, b, method, score, mid, decision in rows:
        m = "manual" if decision == "accepted" else method
        out[int(mid)] = (int(a), int(b), m, float(score), int(mid))
    return list(out.values())


def pins_among(conn: Connection, entity: str, record_ids: Iterable[int]) -> list[tuple[int, int]]:
    idset = set(record_ids)
    rows = _in(
        conn,
        lambda part: select(P.c.a_id, P.c.b_id).where(
            P.c.entity == entity, or_(P.c.a_id.in_(part), P.c.b_id.in_(part))
        ),
        idset,
    )
    return sorted({(int(a), int(b)) for a, b in rows})


def all_pins(conn: Connection, entity: str) -> list[tuple[int, int]]:
    return [
        (int(a), int(b))
        for a, b in conn.execute(select(P.c.a_id, P.c.b_id).where(P.c.entity == entity))
    ]


def recluster(
    conn: Connection, entity: str, seeds: Iterable[int], boxes_for: BoxLoader | None = None
) -> set[int]:
    """Recompute the clusters around ``seeds`` (rows) and write what changed.

    The neighbourhood is closed over edges and current membership, so clusters are always
    recomputed whole; returns the ids of clusters that changed (new or grown or shrunk).
    """
    nodes: set[int] = set(seeds)
    frontier = set(nodes)
    edges: dict[int | None, Edge] = {}
    old: dict[int, int] = {}
    while frontier:
        cur = membership(conn, entity, frontier)
        old.update(cur)
        grown = set(members_of(conn, entity, set(cur.values())))
        es = edges_among(conn, entity, frontier | grown)
        for e in es:
            edges[e[4]] = e
        reach = grown | {e[0] for e in es} | {e[1] for e in es}
        frontier = reach - nodes
        nodes |= reach
    old.update(membership(conn, entity, nodes - set(old)))
    boxes = boxes_for(conn, nodes) if boxes_for is not None else None
    new = cluster_edges(nodes, edges.values(), pins_among(conn, entity, nodes), boxes)
    return write_membership(conn, entity, old, new, edges.values())


def write_membership(
    conn: Connection,
    entity: str,
    old: dict[int, int],
    new: dict[int, int],
    edges: Iterable[Edge] = (),
    ts: datetime | None = None,
) -> set[int]:
    """Apply a new assignment for the rows in ``new`` (old: their current member rows).

    Singletons lose their member row; a cluster id that disappears becomes an alias of the
    cluster its row now belongs to, so a saved id keeps resolving.
    """
    ts = ts or now()
    size: dict[int, int] = {}
    for c in new.values():
        size[c] = size.get(c, 0) + 1
    want = {r: c for r, c in new.items() if size[c] > 1}
    drop = [r for r in old if r not in want]
    changed_rows = [r for r, c in want.items() if old.get(r) != c]
    for part in chunks(sorted(drop), IN_CHUNK):
        conn.execute(delete(M).where(M.c.entity == entity, M.c.record_id.in_(part)))
    if changed_rows:
        for part in chunks(sorted(changed_rows), 5000):
            upsert(
                conn,
                M,
                [
                    {"entity": entity, "record_id": r, "cluster_id": want[r], "joined_at": ts}
                    for r in part
                ],
                ["entity", "record_id"],
            )
    changed: set[int] = set()
    for r in set(old) | set(want):
        o, w = old.get(r), want.get(r)
        if o != w:
            changed |= {c for c in (o, w) if c is not None}
    # Aliases: an old cluster id that is no longer a cluster points at its row's new cluster.
    by_node: dict[int, list[tuple[int, int, int | None]]] = {}
    for e in edges:
        by_node.setdefault(e[0], []).append((e[0], e[1], e[4]))
        by_node.setdefault(e[1], []).append((e[0], e[1], e[4]))
    gone = {c for c in set(old.values()) if c in new and new[c] != c}
    alias_rows = [
        {
            "entity": entity,
            "alias_id": c,
            "cluster_id": new[c],
            "match_id": _linking_match(c, new, by_node),
            "merged_at": ts,
        }
        for c in sorted(gone)
    ]
    if alias_rows:
        upsert(conn, A, alias_rows, ["entity", "alias_id"])
        for row in alias_rows:  # flatten chains: aliases of the old id follow it
            conn.execute(
                update(A)
                .where(A.c.entity == entity, A.c.cluster_id == row["alias_id"])
                .values(cluster_id=row["cluster_id"])
            )
    # An id that is a cluster again (after a split) is no longer an alias.
    back = sorted({c for c in new.values() if size[c] > 1} | {r for r in new if size[new[r]] == 1})
    for part in chunks(back, IN_CHUNK):
        conn.execute(delete(A).where(A.c.entity == entity, A.c.alias_id.in_(part)))
    _write_clusters(conn, entity, changed, want, ts)
    live = set(want.values())
    return {c for c in changed if c in live}


def _linking_match(
    c: int, new: dict[int, int], by_node: dict[int, list[tuple[int, int, int | None]]]
) -> int | None:
    """The evidence that joined an old cluster id to its new cluster (for the history)."""
    for a, b, mid in sorted(by_node.get(c, []), key=lambda e: (e[0], e[1])):
        if new.get(a) == new.get(b):
            return mid
    return None


def _write_clusters(
    conn: Connection, entity: str, changed: set[int], want: dict[int, int], ts: datetime
) -> None:
    if not changed:
        return
    size: dict[int, int] = {}
    for c in want.values():
        if c in changed:
            size[c] = size.get(c, 0) + 1
    dead = sorted(c for c in changed if c not in size)
    for part in chunks(dead, IN_CHUNK):
        conn.execute(delete(C).where(C.c.entity == entity, C.c.id.in_(part)))
    rows = [
        {"entity": entity, "id": c, "size": n, "created_at": ts, "updated_at": ts}
        for c, n in sorted(size.items())
    ]
    for chunk in chunks(rows, 5000):
        upsert(conn, C, chunk, ["entity", "id"], update_cols=["size", "updated_at"])


def cluster_count(conn: Connection, entity: str) -> int:
    return int(
        conn.execute(select(func.count()).select_from(C).where(C.c.entity == entity)).scalar_one()
    )


def add_pins(
    conn: Connection, entity: str, pairs: Sequence[tuple[int, int]], reason: str, note: str | None
) -> None:
    ts = now()
    rows = [
        {
            "entity": entity,
            "a_id": min(a, b),
            "b_id": max(a, b),
            "reason": reason,
            "note": note,
            "created_at": ts,
        }
        for a, b in pairs
        if a != b
    ]
    for part in chunks(rows, 5000):
        upsert(conn, P, part, ["entity", "a_id", "b_id"], update_cols=["reason", "note"])
