"""The identity graph: clusters from match edges, respecting pins, with stable ids and aliases.

A cluster's id is its smallest member id. Edges are applied strongest first (rules, then
human acceptances, then scores high to low, ties by ids), and an edge that would join two rows
an admin pinned apart is skipped, so the outcome depends only on the edges and pins, never
on the order the store or the run saw the rows in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select

from warehouse.identity import schema as ids
from warehouse.schema import table
from warehouse.state import now
from warehouse.write.bulk import (
    LIST_CHUNK,
    LIST_PARAM,
    bound,
    id_list,
    list_values,
    many,
    put_rows,
)
from warehouse.write.upsert import chunks, upsert

IN_CHUNK = 900
MERGING = ("merge", "accepted")

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


_FREE: frozenset[int] = frozenset()


class _UF:
    """Union-find over row ids. A full run joins a hundred thousand edges through it, so a
    root without pins or mailboxes costs no set of its own."""

    def __init__(self, pins: dict[int, set[int]], boxes: Boxes | None = None) -> None:
        self.parent: dict[int, int] = {}
        # Each root's pins: a row's own until it joins a cluster, then the cluster's.
        self.pinned: dict[int, set[int] | frozenset[int]] = {n: set(p) for n, p in pins.items()}
        self.boxes: dict[int, frozenset[str]] = dict(boxes or {})

    def find(self, x: int) -> int:
        parent = self.parent
        p = parent.get(x)
        if p is None:
            parent[x] = x
            return x
        if p == x:
            return x
        root = p
        while (up := parent[root]) != root:
            root = up
        while x != root:  # every row on the way now points at the root
            parent[x], x = root, parent[x]
        return root

    def union(self, a: int, b: int, checked: bool) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        pinned = self.pinned
        pa, pb = pinned.get(ra, _FREE), pinned.get(rb, _FREE)
        if (pa or pb) and (
            any(self.find(x) == rb for x in pa) or any(self.find(x) == ra for x in pb)
        ):
            return False
        keep, gone = (ra, rb) if ra < rb else (rb, ra)
        if self.boxes:
            ba, bb = self.boxes.get(ra, frozenset()), self.boxes.get(rb, frozenset())
            if checked and _conflict(ba, bb):
                return False
            if ba or bb:
                self.boxes[keep] = ba | bb
        self.parent[gone] = keep
        if pa or pb:
            pinned[keep] = (pa if pa else set()) | pb
            pinned.pop(gone, None)
        return True


def _edge_order(e: Edge) -> tuple[int, float, int, int]:
    method = e[2]
    kind = 0 if method.startswith("rule") else 1 if method == "manual" else 2
    return (kind, -e[3], e[0], e[1])


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
    for e in sorted(edges, key=_edge_order):
        uf.union(e[0], e[1], e[2] == "score")
    return {n: uf.find(n) for n in list(uf.parent)}


def _in(conn: Connection, stmt_for: Any, values: Iterable[Any]) -> list[Any]:
    """Rows of ``stmt_for(ids)`` for the given values, bound as one list per statement
    (``list_values``): a cluster's neighbourhood is read in a few statements whose text
    never changes, not one freshly compiled ``IN`` of 900 values per chunk."""
    out: list[Any] = []
    for part in chunks(sorted(set(values)), LIST_CHUNK):
        got = conn.execute(stmt_for(list_values(conn, part)), {LIST_PARAM: id_list(conn, part)})
        out.extend(got.all())
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
    cols = (X.c.a_id, X.c.b_id, X.c.method, X.c.score, X.c.id, X.c.decision)
    # One query per side, so each uses its side's index, and the decision tested here: with
    # it (or ``a IN … OR b IN …``) in SQL, SQLite scanned every merge of the entity by the
    # decision index (3.5 s for a 1 % change at 1M).
    rows = [
        row
        for side in (X.c.a_id, X.c.b_id)
        for row in _in(
            conn,
            lambda part, side=side: select(*cols).where(X.c.entity == entity, side.in_(part)),
            idset,
        )
        if row[5] in MERGING
    ]
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


_MEMBER = (
    "INSERT INTO identity_member (entity, record_id, cluster_id, joined_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (entity, record_id) DO UPDATE SET cluster_id = excluded.cluster_id,"
    " joined_at = excluded.joined_at"
)
_UNMEMBER = "DELETE FROM identity_member WHERE entity = ? AND record_id = ?"
_ALIAS = (
    "INSERT INTO identity_alias (entity, alias_id, cluster_id, match_id, merged_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (entity, alias_id) DO UPDATE SET"
    " cluster_id = excluded.cluster_id, match_id = excluded.match_id,"
    " merged_at = excluded.merged_at"
)
_FOLLOW = "UPDATE identity_alias SET cluster_id = ? WHERE entity = ? AND cluster_id = ?"
_UNALIAS = "DELETE FROM identity_alias WHERE entity = ? AND alias_id = ?"
_CLUSTER = (
    "INSERT INTO identity_cluster (entity, id, size, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (entity, id) DO UPDATE SET size = excluded.size,"
    " updated_at = excluded.updated_at"
)
_UNCLUSTER = "DELETE FROM identity_cluster WHERE entity = ? AND id = ?"


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
    cluster its row now belongs to, so a saved id keeps resolving. An edge may come without
    its match id (a full run's own merges): the few an alias names are looked up. Rows go
    through prepared statements (``many``): a full run rewrites a hundred thousand of them.
    """
    stamp = bound(conn, M.c.joined_at)(ts or now())
    size = Counter(new.values())
    want = {r: c for r, c in new.items() if size[c] > 1}
    drop = [r for r in old if r not in want]
    changed_rows = [r for r, c in want.items() if old.get(r) != c]
    many(conn, _UNMEMBER, [(entity, r) for r in sorted(drop)])
    rows = [(entity, r, want[r], stamp) for r in sorted(changed_rows)]
    _put(conn, M, entity, ("entity", "record_id", "cluster_id", "joined_at"), _MEMBER, rows)
    changed: set[int] = set()  # clusters a row left or joined
    for r, o in old.items():
        w = want.get(r)
        if o != w:
            changed.add(o)
            if w is not None:
                changed.add(w)
    changed.update(w for r, w in want.items() if r not in old)
    # Aliases: an old cluster id that is no longer a cluster points at its row's new cluster.
    gone = {c for c in set(old.values()) if c in new and new[c] != c}
    by_node: dict[int, list[tuple[int, int, int | None]]] = {}
    for e in edges:
        for n in (e[0], e[1]):
            if n in gone:
                by_node.setdefault(n, []).append((e[0], e[1], e[4]))
    links = {c: _linking_match(c, new, by_node) for c in sorted(gone)}
    ids = _match_ids(
        conn, entity, [(a, b) for a, b, mid in filter(None, links.values()) if mid is None]
    )
    alias_rows = [
        (
            entity,
            c,
            new[c],
            None if e is None else e[2] if e[2] is not None else ids.get(e[:2]),
            stamp,
        )
        for c, e in links.items()
    ]
    many(conn, _ALIAS, alias_rows)
    # Flatten chains: aliases of the old id follow it.
    many(conn, _FOLLOW, [(row[2], entity, row[1]) for row in alias_rows])
    # An id that is a cluster again (after a split) is no longer an alias. A full run has
    # every row here: only the ids that are aliases at all are deleted, not each row's id.
    back = {c if size[c] > 1 else r for r, c in new.items()}
    if len(back) > IN_CHUNK:
        back &= {int(a) for (a,) in conn.execute(select(A.c.alias_id).where(A.c.entity == entity))}
    many(conn, _UNALIAS, [(entity, c) for c in sorted(back)])
    _write_clusters(conn, entity, changed, want, stamp)
    live = set(want.values())
    return {c for c in changed if c in live}


def _linking_match(
    c: int, new: dict[int, int], by_node: dict[int, list[tuple[int, int, int | None]]]
) -> tuple[int, int, int | None] | None:
    """The evidence that joined an old cluster id to its new cluster (for the history)."""
    for a, b, mid in sorted(by_node.get(c, []), key=lambda e: (e[0], e[1])):
        if new.get(a) == new.get(b):
            return a, b, mid
    return None


def _match_ids(
    conn: Connection, entity: str, pairs: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], int]:
    """Evidence ids of the given pairs."""
    want = set(pairs)
    rows = _in(
        conn,
        lambda part: select(X.c.a_id, X.c.b_id, X.c.id).where(
            X.c.entity == entity, X.c.a_id.in_(part)
        ),
        {a for a, _ in want},
    )
    return {(int(a), int(b)): int(i) for a, b, i in rows if (int(a), int(b)) in want}


def _write_clusters(
    conn: Connection, entity: str, changed: set[int], want: dict[int, int], stamp: Any
) -> None:
    if not changed:
        return
    size: dict[int, int] = {}
    for c in want.values():
        if c in changed:
            size[c] = size.get(c, 0) + 1
    many(conn, _UNCLUSTER, [(entity, c) for c in sorted(changed) if c not in size])
    rows = [(entity, c, n, stamp, stamp) for c, n in sorted(size.items())]
    _put(conn, C, entity, ("entity", "id", "size", "created_at", "updated_at"), _CLUSTER, rows)


def _put(
    conn: Connection,
    table: Any,
    entity: str,
    columns: Sequence[str],
    sql: str,
    rows: list[tuple[Any, ...]],
) -> None:
    """Into an entity without rows in ``table`` (a first or from-scratch run) nothing can
    conflict."""
    fresh = len(rows) > IN_CHUNK and no_rows(conn, table, entity)
    put_rows(conn, table, columns, sql, rows, fresh)


def no_rows(conn: Connection, table: Any, entity: str) -> bool:
    return (
        conn.execute(select(table.c.entity).where(table.c.entity == entity).limit(1)).first()
        is None
    )


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
