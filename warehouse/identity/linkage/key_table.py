"""The blocking keys as stored: ``identity_key``, and the keys incremental runs renewed
since (``identity_key_delta``), which every lookup applies and a full run folds in.

``identity_key`` holds the keys in buckets: a row per entity and bucket (the digest's top
bits, ``bucket``), its (digest, record) pairs packed in key order (``_buckets``). A first run
writes 14 M keys for a million people: a row per key cost the index writer 13 s of SQLite's
B-tree inserts (about 0.8 µs a row, at any batching) and 28 bytes a key; a million buckets
are written in 2 s at 16 bytes a key. A lookup reads the buckets of the keys it asks for and
keeps their pairs (a key's rows are in its bucket, in record order).

A 1 % change of a million people renews 0.2 M keys: rewritten in place, each would land in
another bucket, so the run would rewrite most of the table; noted in the delta, they fill a
few pages in key order. Rows sharing a key are compared, so a key's rows are its rows in
``identity_key``, less those the delta dropped, with those it added."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, delete, select

from warehouse import schema as t
from warehouse.identity import schema as ids
from warehouse.identity.linkage import index
from warehouse.identity.linkage.frame import bulk, isin, runs, unique
from warehouse.write.bulk import (
    LIST_CHUNK,
    driver_rows,
    id_list,
    many,
    member,
    placeholder,
    put_rows,
)
from warehouse.write.upsert import chunks

K = t.table(ids.IdentityKey)
D = t.table(ids.IdentityKeyDelta)
Ints = NDArray[np.int64]
Digests = tuple[Ints, Ints]  # (digest, record id) per key

# 2**20 buckets over the 64-bit digests: 13 keys a bucket at a million people (about 220
# bytes), one at ten thousand; a lookup reads a bucket per key it asks for.
SHIFT = 44
_PAGE = 50_000  # buckets written or read per statement
_NONE: Digests = (np.zeros(0, np.int64), np.zeros(0, np.int64))

_PUT = (
    "INSERT INTO identity_key (entity, bucket, pairs) VALUES (?, ?, ?) "
    "ON CONFLICT (entity, bucket) DO UPDATE SET pairs = excluded.pairs"
)
_EMPTIED = "DELETE FROM identity_key WHERE entity = ? AND bucket = ?"
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
# (a full run folds them whatever their number). Folding rewrites most buckets of
# identity_key whether it folds 0.2 M keys or 4 M, so it is worth doing for many at once;
# a lookup meanwhile reads both tables.
FOLD_AT = 4_000_000


def index_order(keys: Digests) -> Digests:
    """Keys in (digest, record) order, each once."""
    d, r = keys
    if index.in_order(d, r):
        return d, r
    d, r, _ = index.distinct(d, r, np.zeros(d.shape[0], np.int8))
    return d, r


def _starts(b: Ints) -> Ints:
    """Where each bucket's keys begin among keys in index order (``b``: their buckets)."""
    return np.flatnonzero(np.concatenate(([True], b[1:] != b[:-1])))


def _buckets(entity: str, keys: Digests) -> list[tuple[str, int, bytes]]:
    """Rows of ``identity_key`` for keys in index order: each bucket's pairs packed."""
    d, r = keys
    if not d.shape[0]:
        return []
    b = d >> SHIFT
    first = _starts(b)
    ends = np.append(first[1:], d.shape[0]) * 16
    packed = np.stack([d, r], axis=1).astype("<i8", copy=False).tobytes()
    at = (first * 16).tolist()
    return [
        (entity, bk, packed[s:e])
        for bk, s, e in zip(b[first].tolist(), at, ends.tolist(), strict=True)
    ]


def _unpack(blobs: Sequence[Any]) -> Digests:
    """The pairs packed in ``blobs`` (bytes or memory views), in the blobs' order."""
    if not blobs:
        return _NONE
    a = np.frombuffer(b"".join(blobs), "<i8").reshape(-1, 2)
    return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64)


@bulk
def add_keys(conn: Connection, entity: str, keys: Digests, fresh: bool = False) -> int:
    """Write keys into ``identity_key``. Idempotent: two preparations of the same rows
    (overlapping runs) converge on one key. ``fresh``: the entity's keys were just emptied
    under the run's lease (a full run): ``add_fresh``."""
    d, r = index_order(keys)
    if fresh:
        return add_fresh(conn, entity, [(d, r)])
    _apply(conn, entity, (d, r), _NONE)
    return int(d.shape[0])


def add_fresh(conn: Connection, entity: str, pieces: Iterable[Digests]) -> int:
    """Write keys into an entity's emptied index from ``pieces`` that follow each other in
    index order (a full run, under its lease): the buckets are written whole, a page of
    them at a time, by COPY on PostgreSQL. Returns how many keys."""
    held, n = _NONE, 0
    for piece in pieces:
        d, r = np.concatenate([held[0], piece[0]]), np.concatenate([held[1], piece[1]])
        if not d.shape[0]:
            continue
        last = int(_starts(d >> SHIFT)[-1])  # the last bucket may go on in the next piece
        n += _put_whole(conn, entity, (d[:last], r[:last]))
        held = (d[last:], r[last:])
    return n + _put_whole(conn, entity, held)


def _put_whole(conn: Connection, entity: str, keys: Digests) -> int:
    d, r = keys
    if not d.shape[0]:
        return 0
    cut = _starts(d >> SHIFT)[::_PAGE].tolist()
    for lo, hi in zip(cut, [*cut[1:], d.shape[0]], strict=True):
        rows = _buckets(entity, (d[lo:hi], r[lo:hi]))
        put_rows(conn, K, ("entity", "bucket", "pairs"), _PUT, rows, True)
    return int(d.shape[0])


def drop_keys(conn: Connection, entity: str, keys: Digests) -> None:
    """Delete keys from ``identity_key`` (those it does not hold are ignored)."""
    _apply(conn, entity, _NONE, keys)


def _read(conn: Connection, entity: str, buckets: Sequence[int]) -> Digests:
    """The pairs ``identity_key`` holds in ``buckets`` (ascending), in key order."""
    q = f"SELECT pairs FROM {K.name} WHERE entity = {placeholder(conn)} AND "
    q += member(conn, "bucket", "bigint") + " ORDER BY bucket"
    blobs: list[Any] = []
    for part in chunks(list(buckets), _PAGE):
        blobs.extend(b for (b,) in driver_rows(conn, q, (entity, id_list(conn, part))))
    return _unpack(blobs)


def _apply(conn: Connection, entity: str, add: Digests, drop: Digests) -> None:
    """Rewrite the buckets ``add`` and ``drop`` touch: their pairs less ``drop``, with
    ``add``; a bucket left empty is deleted."""
    touched = unique(np.concatenate([add[0] >> SHIFT, drop[0] >> SHIFT]))
    for part in chunks(touched.tolist(), _PAGE):
        held = _read(conn, entity, part)
        inside = np.asarray(part, np.int64)
        a = isin(add[0] >> SHIFT, inside)
        x = isin(drop[0] >> SHIFT, inside)
        keep = ~np.isin(_pairs(*held), _pairs(drop[0][x], drop[1][x]))
        d = np.concatenate([held[0][keep], add[0][a]])
        r = np.concatenate([held[1][keep], add[1][a]])
        d, r = index_order((d, r))
        rows = _buckets(entity, (d, r))
        many(conn, _PUT, rows)
        emptied = inside[~isin(inside, d >> SHIFT)]
        many(conn, _EMPTIED, list(zip(repeat(entity), emptied.tolist())))


def lookup(conn: Connection, entity: str, keys: Ints) -> Digests:
    """The pairs ``identity_key`` holds for ``keys`` (the delta not applied), in (digest,
    record) order."""
    if not keys.shape[0]:
        return _NONE
    wanted = unique(keys)
    d, r = _read(conn, entity, unique(wanted >> SHIFT).tolist())
    # Each key's run of pairs: the keys are searched in the pairs (a 1 % change of a million
    # people reads 3 M pairs for 133 k keys), not the pairs in the keys.
    lo = np.searchsorted(d, wanted, "left")
    at = runs(lo, np.searchsorted(d, wanted, "right") - lo)
    return d[at], r[at]


def stored_keys(conn: Connection, entity: str) -> Digests:
    """Every pair ``identity_key`` holds for ``entity`` (the delta not applied), in order."""
    q = f"SELECT pairs FROM {K.name} WHERE entity = {placeholder(conn)}"
    return index_order(_unpack([b for (b,) in driver_rows(conn, q, (entity,))]))


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
        _apply(conn, entity, (came[:, 0].copy(), came[:, 1].copy()), (gone[:, 0], gone[:, 1]))
        n, after = n + len(page), (int(held[-1, 0]), int(held[-1, 1]))
    if n:
        conn.execute(delete(D).where(D.c.entity == entity))
    return n


_FOLD_PAGE = 200_000
