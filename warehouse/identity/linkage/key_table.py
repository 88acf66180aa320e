"""The blocking keys as stored: ``identity_key``, and the keys incremental runs renewed
since (``identity_key_delta``), which every lookup applies and a full run folds in.

A full run writes ``identity_key`` in its own key order. A 1 % change of a million people
renews 0.2 M keys: written into that 14 M-key table, each landed on another of its pages,
so the run rewrote (and SQLite checkpointed) most of the table; noted in the delta, they
fill a few pages in key order. Rows sharing a key are compared, so a key's rows are its
rows in ``identity_key``, less those the delta dropped, with those it added."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import Connection, delete, select

from warehouse import schema as t
from warehouse.identity import schema as ids
from warehouse.identity.linkage import index
from warehouse.identity.linkage.frame import bulk
from warehouse.write.bulk import LIST_CHUNK, driver_rows, id_list, many, placeholder, put_rows
from warehouse.write.upsert import chunks

K = t.table(ids.IdentityKey)
D = t.table(ids.IdentityKeyDelta)
Digests = tuple[NDArray[np.int64], NDArray[np.int64]]  # (digest, record id) per key

_ADD_KEY = (
    "INSERT INTO identity_key (entity, digest, record_id) VALUES (?, ?, ?) "
    "ON CONFLICT (entity, digest, record_id) DO NOTHING"
)
# (digest, record id) pairs as one JSON array: SQLite reads them in C, a quarter less than
# binding two parameters per row from Python (14 M keys in a first run).
_FRESH_KEYS = (
    "INSERT INTO identity_key (entity, digest, record_id) SELECT '{entity}', "
    "json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)"
)
DROP_KEY = "DELETE FROM identity_key WHERE entity = ? AND digest = ? AND record_id = ?"
DROP_DELTA = "DELETE FROM identity_key_delta WHERE entity = ? AND digest = ? AND record_id = ?"
_NOTE = (
    f"INSERT INTO {D.name} (entity, digest, record_id, n) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (entity, digest, record_id) DO UPDATE "
    f"SET n = {{hi}}(-1, {{lo}}(1, {D.name}.n + excluded.n))"
)
# The listed keys drive the lookup (SQLite's CROSS JOIN keeps that order: otherwise it may
# scan the delta and parse the list once per row of it).
_RENEWED = {
    "sqlite": f"SELECT k.digest, k.record_id, k.n FROM json_each(?) d CROSS JOIN {D.name} k "
    "ON k.entity = ? AND k.digest = d.value",
    "postgresql": f"SELECT k.digest, k.record_id, k.n FROM unnest(%s::bigint[]) d "
    f"JOIN {D.name} k ON k.entity = %s AND k.digest = d",
}
# Keys renewed by incremental runs are folded into identity_key once this many are held
# (a full run folds them whatever their number). Folding rewrites most pages of
# identity_key whether it folds 0.2 M keys or 4 M (measured at a million people: 2.8 s for
# two 1 % changes' 0.47 M keys), so it is worth doing for many at once; a lookup meanwhile
# reads both tables, each by its key.
FOLD_AT = 4_000_000


def index_order(keys: Digests) -> Digests:
    """Keys in (digest, record) order, each once."""
    d, r = keys
    if index.in_order(d, r):
        return d, r
    d, r, _ = index.distinct(d, r, np.zeros(d.shape[0], np.int8))
    return d, r


@bulk
def add_keys(conn: Connection, entity: str, keys: Digests, fresh: bool = False) -> int:
    """Write keys into ``identity_key`` in (digest, record) order: the primary key is filled
    in its own order. Idempotent: two preparations of the same rows (overlapping runs)
    converge on one row. ``fresh``: the entity's keys were just emptied under the run's
    lease (a full run), so PostgreSQL takes them by COPY, with no conflict to handle."""
    d, r = index_order(keys)
    for lo in range(0, d.shape[0], 200_000):
        if fresh and conn.dialect.name == "sqlite":
            # Nothing can conflict and the entity is one of ours: no conflict clause.
            if not entity.isidentifier():
                raise ValueError(f"entity {entity!r} is not a plain name")
            pairs = np.stack([d[lo : lo + 200_000], r[lo : lo + 200_000]], axis=1)
            text = orjson.dumps(pairs, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            conn.exec_driver_sql(_FRESH_KEYS.format(entity=entity), (text,))
        else:
            ds, rs = d[lo : lo + 200_000].tolist(), r[lo : lo + 200_000].tolist()
            rows = list(zip(repeat(entity), ds, rs))
            put_rows(conn, K, ("entity", "digest", "record_id"), _ADD_KEY, rows, fresh)
    return int(d.shape[0])


def difference(was: Digests, now: Digests) -> tuple[Digests, Digests]:
    """Rows' keys as stored (``was``) against their keys now: (keys to drop, keys to add)."""
    a, b = _pairs(*was), _pairs(*now)
    stale, fresh = ~np.isin(a, b), ~np.isin(b, a)
    return (was[0][stale], was[1][stale]), (now[0][fresh], now[1][fresh])


def _pairs(d: NDArray[np.int64], r: NDArray[np.int64]) -> Any:
    """(digest, record) pairs as single 16-byte values, for set operations in numpy."""
    return np.ascontiguousarray(np.stack([d, r], axis=1)).view(np.dtype((np.void, 16))).ravel()


def note(conn: Connection, entity: str, stale: Digests, fresh: Digests) -> None:
    """An incremental run's renewal of keys: ``stale`` dropped, ``fresh`` added (none held
    already). Added and then dropped (or the reverse) a key cancels out; noted twice (a
    run replayed) it counts once. Folds the delta in once it holds ``FOLD_AT`` keys."""
    hi, lo = ("max", "min") if conn.dialect.name == "sqlite" else ("GREATEST", "LEAST")
    for keys, n in ((stale, -1), (fresh, 1)):
        d, r = index_order(keys)
        rows = list(zip(repeat(entity), d.tolist(), r.tolist(), repeat(n)))
        many(conn, _NOTE.format(hi=hi, lo=lo), rows)
    held = f"SELECT count(*) FROM (SELECT 1 FROM {D.name} WHERE entity = {placeholder(conn)} "
    if conn.exec_driver_sql(f"{held}LIMIT {int(FOLD_AT)}) h", (entity,)).scalar_one() >= FOLD_AT:
        fold(conn, entity)


def renewed(
    conn: Connection, entity: str, keys: Sequence[int]
) -> tuple[dict[int, list[int]], dict[int, set[int]]]:
    """Per key among ``keys`` (sorted), the rows the delta added to its block and the rows
    it dropped from it."""
    added: dict[int, list[int]] = defaultdict(list)
    dropped: dict[int, set[int]] = defaultdict(set)
    if conn.execute(select(D.c.n).where(D.c.entity == entity).limit(1)).first() is None:
        return added, dropped
    for part in chunks(keys, LIST_CHUNK):
        sql = _RENEWED[conn.dialect.name]
        for d, r, n in driver_rows(conn, sql, (id_list(conn, part), entity)):
            if n > 0:
                added[int(d)].append(int(r))
            elif n < 0:
                dropped[int(d)].add(int(r))
    return added, dropped


def fold(conn: Connection, entity: str) -> int:
    """Apply the delta to ``identity_key`` and empty it (returns how many keys it held), a
    page of keys at a time in key order."""
    p = placeholder(conn)
    q = (
        f"SELECT digest, record_id, n FROM {D.name} WHERE entity = {p} "
        f"AND (digest, record_id) > ({p}, {p}) ORDER BY digest, record_id LIMIT {_FOLD_PAGE}"
    )
    n, after = 0, (-(2**63), -1)
    while page := driver_rows(conn, q, (entity, *after)):
        held = np.array(page, np.int64).reshape(-1, 3)
        gone, came = held[held[:, 2] < 0], held[held[:, 2] > 0]
        many(conn, DROP_KEY, list(zip(repeat(entity), gone[:, 0].tolist(), gone[:, 1].tolist())))
        if came.shape[0]:
            add_keys(conn, entity, (came[:, 0].copy(), came[:, 1].copy()))
        n, after = n + len(page), (int(held[-1, 0]), int(held[-1, 1]))
    if n:
        conn.execute(delete(D).where(D.c.entity == entity))
    return n


_FOLD_PAGE = 200_000
