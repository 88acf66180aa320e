"""A stream's stored payload hashes, read in one scan at the start of a pass.

Split from ``warehouse.write.store``: this is the one read of a whole stream's lineage a
re-read export makes, and at a 1 % change it is a large share of the pass, so how the rows
are walked matters more than anywhere else in the write path.

Two walks give the same hashes. By key (the lineage's unique index, source id order): each
index entry leads to its table row at random, ~0.5 µs a row on SQLite and ~1.4 µs on a
PostgreSQL table that was never vacuumed. In physical order (rowid ranges on SQLite, block
ranges read by a TID range scan on PostgreSQL): sequential, ~2.5–3× cheaper a row, but other
streams' rows are read and dropped too. So the physical walk is taken when this stream holds
a large share of the lineage table, measured at the start (a count on SQLite; a sample of
blocks on PostgreSQL, which may have no statistics at all, autovacuum being off or behind)
rather than left to a planner that may have none.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import Connection

from warehouse import schema as t
from warehouse.state import StreamKey

_TABLE = t.table(t.SourceRecord).name
PHYSICAL_SHARE = 0.4
"""The physical walk wins when this stream holds at least this share of the lineage rows
(a sequential row costs ~⅓ of a random one; the margin covers the estimate's error)."""
_PG_SMALL_BLOCKS = 2048
"""A table of at most this many 8 kB blocks (16 MB) is read whole without sampling it."""
_SAMPLE = 256
"""Rows (SQLite) or blocks (PostgreSQL) sampled to measure the stream's share."""
_ROWS_PER_BLOCK = 64
"""Lineage rows a PostgreSQL block holds, about (~100–130 bytes each): sizes block batches."""


def joined_hashes(
    conn: Connection, key: StreamKey, batch: int = 200_000, physical: bool | None = None
) -> Iterator[tuple[str, int, str, int]]:
    """The payload hashes of a stream's lineage rows, concatenated by the database, about
    ``batch`` rows at a time: (live hashes joined, how many, deleted ones joined, how many).

    What a pass compares raw records with before decoding them: one string per batch
    instead of a Python tuple per row (a million-row stream has ~2.3M lineage rows). Rows
    without a hash (people first seen as mail participants, reference companies) are left
    out. A hash may come twice (the caller deduplicates), never not at all. ``physical``
    picks the walk (see the module docstring); by default it is chosen by the stream's
    share of the table. Meant for the start of a pass, before it writes, in one snapshot
    (``flows.pass_hashes.load`` reads in REPEATABLE READ on PostgreSQL): a row updated by
    another session between two physical batches could otherwise be read in neither.
    """
    sqlite = conn.dialect.name == "sqlite"
    if physical is None:
        physical = _mostly_this_stream(conn, key) if sqlite else _pg_mostly_this_stream(conn, key)
    if sqlite:
        yield from (_joined_rowids if physical else _joined_ranges)(conn, key, batch)
    else:
        yield from (_joined_blocks if physical else _joined_keyset)(conn, key, batch)


def _mostly_this_stream(conn: Connection, key: StreamKey) -> bool:
    """SQLite: ~256 row ids spread evenly over the table's span, probed by primary key
    (microseconds, where counting the stream's rows on its index costs ~0.04 µs a row)."""
    hi, lo = conn.exec_driver_sql(
        f"SELECT (SELECT max(id) FROM {_TABLE}), (SELECT min(id) FROM {_TABLE})"
    ).one()
    if hi is None:
        return False
    span = int(hi) - int(lo) + 1
    probe = sorted({int(lo) + span * i // _SAMPLE for i in range(_SAMPLE)} | {int(hi)})
    mine, every = conn.exec_driver_sql(
        f"SELECT count(*) FILTER (WHERE connector = ? AND stream = ?), count(*) FROM {_TABLE} "
        "WHERE id IN (SELECT value FROM json_each(?))",
        (key.connector, key.stream, json.dumps(probe)),
    ).one()
    return bool(every == 0 or mine >= PHYSICAL_SHARE * every)


def _pg_blocks(conn: Connection) -> int:
    blocks = conn.exec_driver_sql(
        "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int", (_TABLE,)
    ).scalar_one()
    return int(blocks)


def _pg_mostly_this_stream(conn: Connection, key: StreamKey) -> bool:
    """PostgreSQL: a small table is read whole; a larger one is sampled (~256 random blocks,
    ``TABLESAMPLE SYSTEM``, repeatable), since ``pg_class`` may hold no estimate at all."""
    blocks = _pg_blocks(conn)
    if blocks <= _PG_SMALL_BLOCKS:
        return True
    pct = min(100.0, 100.0 * _SAMPLE / blocks)
    mine, every = conn.exec_driver_sql(
        f"SELECT count(*) FILTER (WHERE connector = %s AND stream = %s), count(*) "
        f"FROM {_TABLE} TABLESAMPLE SYSTEM (%s) REPEATABLE (0)",
        (key.connector, key.stream, pct),
    ).one()
    return bool(every == 0 or mine >= PHYSICAL_SHARE * every)


_AGG = (
    "SELECT {concat}(CASE WHEN deleted_at IS NULL THEN payload_hash END, ''), "
    "{concat}(CASE WHEN deleted_at IS NOT NULL THEN payload_hash END, ''), "
    "count(*), count(deleted_at) "
)


def _joined_rowids(
    conn: Connection, key: StreamKey, batch: int
) -> Iterator[tuple[str, int, str, int]]:
    """SQLite, physical order: ranges of ``batch`` row ids, each aggregated in one
    sequential read of the table (``NOT INDEXED``: the key index would be random access);
    the last range is open-ended."""
    hi, lo = conn.exec_driver_sql(
        f"SELECT (SELECT max(id) FROM {_TABLE}), (SELECT min(id) FROM {_TABLE})"
    ).one()
    if hi is None:
        return
    sql = (
        _AGG.format(concat="group_concat")
        + f"FROM {_TABLE} NOT INDEXED WHERE id >= ? AND connector = ? AND stream = ? "
        "AND payload_hash <> ''"
    )
    start = int(lo)
    while True:
        last = start + batch > hi
        args: tuple[object, ...] = (start, key.connector, key.stream)
        stmt = sql if last else f"{sql} AND id < ?"
        live, dead, n, n_dead = conn.exec_driver_sql(
            stmt, args if last else (*args, start + batch)
        ).one()
        yield live or "", n - n_dead, dead or "", n_dead
        if last:
            return
        start += batch


def _joined_blocks(
    conn: Connection, key: StreamKey, batch: int
) -> Iterator[tuple[str, int, str, int]]:
    """PostgreSQL, physical order: ranges of heap blocks read by a TID range scan, the
    planner's other choices switched off for these statements (with no statistics it may
    prefer the key index, which is the random walk this avoids); the last range is
    open-ended."""
    step = max(1, batch // _ROWS_PER_BLOCK)
    blocks = _pg_blocks(conn)
    saved = conn.exec_driver_sql(
        "SELECT current_setting('enable_indexscan'), current_setting('enable_bitmapscan'), "
        "current_setting('enable_seqscan'), current_setting('jit')"
    ).one()
    sql = (
        _AGG.format(concat="string_agg")
        + f"FROM {_TABLE} WHERE ctid >= %s::tid AND connector = %s AND stream = %s "
        "AND payload_hash <> ''"
    )
    _pg_plan(conn, ("off", "off", "off", "off"))
    try:
        start = 0
        while True:
            last = start + step >= blocks
            args: tuple[object, ...] = (f"({start},0)", key.connector, key.stream)
            stmt = sql if last else f"{sql} AND ctid < %s::tid"
            live, dead, n, n_dead = conn.exec_driver_sql(
                stmt, args if last else (*args, f"({start + step},0)")
            ).one()
            yield live or "", n - n_dead, dead or "", n_dead
            if last:
                return
            start += step
    finally:
        _pg_plan(conn, tuple(saved))


def _pg_plan(conn: Connection, values: tuple[str, ...]) -> None:
    """Set the three scan switches and JIT (compiling the aggregate of a big stream costs
    more than running it) for the rest of this transaction."""
    conn.exec_driver_sql(
        "SELECT set_config('enable_indexscan', %s, true), "
        "set_config('enable_bitmapscan', %s, true), set_config('enable_seqscan', %s, true), "
        "set_config('jit', %s, true)",
        values,
    )


def _joined_ranges(
    conn: Connection, key: StreamKey, batch: int
) -> Iterator[tuple[str, int, str, int]]:
    """SQLite: batches are ranges of source ids whose bounds come from the lineage key
    alone (a covering index, no table row read), each range aggregated in one scan."""
    where = "connector = ? AND stream = ?"
    bound = (
        f"SELECT source_id FROM source_record WHERE {where} AND source_id > ? "
        f"ORDER BY source_id LIMIT 1 OFFSET {int(batch)}"
    )
    chunk = (
        "SELECT group_concat(CASE WHEN deleted_at IS NULL THEN payload_hash END, ''), "
        "group_concat(CASE WHEN deleted_at IS NOT NULL THEN payload_hash END, ''), "
        f"count(*), count(deleted_at) FROM source_record "
        f"WHERE {where} AND payload_hash <> '' AND source_id >= ?"
    )
    lo = ""
    while True:
        hi = conn.exec_driver_sql(bound, (key.connector, key.stream, lo)).scalar()
        args: tuple[str, ...] = (key.connector, key.stream, lo)
        sql = chunk if hi is None else f"{chunk} AND source_id < ?"
        live, dead, n, n_dead = conn.exec_driver_sql(sql, args if hi is None else (*args, hi)).one()
        yield live or "", n - n_dead, dead or "", n_dead
        if hi is None:
            return
        lo = hi


def _joined_keyset(
    conn: Connection, key: StreamKey, batch: int
) -> Iterator[tuple[str, int, str, int]]:
    """PostgreSQL: the next ``batch`` rows in source id order, aggregated as they are read
    (an index-only walk for bounds would visit every heap row anyway before a VACUUM).
    Each batch starts at the last id of the previous one, so that id's rows may come
    twice; an id whose rows fill a whole batch is read whole on its own."""
    rows = (
        "SELECT payload_hash AS h, source_id AS s, deleted_at AS d FROM source_record "
        "WHERE connector = %s AND stream = %s AND payload_hash <> '' AND source_id {op} %s"
    )
    agg = (
        "SELECT string_agg(CASE WHEN d IS NULL THEN h END, ''), "
        "string_agg(CASE WHEN d IS NOT NULL THEN h END, ''), count(*), count(d), max(s) "
    )
    start, op = "", ">="
    while True:
        sub = rows.format(op=op) + f" ORDER BY source_id LIMIT {int(batch)}"
        live, dead, n, n_dead, last = conn.exec_driver_sql(
            f"{agg} FROM ({sub}) AS b", (key.connector, key.stream, start)
        ).one()
        if n == batch and last == start and op == ">=":
            whole = f"{agg} FROM ({rows.format(op='=')}) AS b"
            live, dead, n, n_dead, _ = conn.exec_driver_sql(
                whole, (key.connector, key.stream, start)
            ).one()
            yield live or "", n - n_dead, dead or "", n_dead
            op = ">"
            continue
        yield live or "", n - n_dead, dead or "", n_dead
        if n < batch:
            return
        start, op = last, ">="


__all__ = ["PHYSICAL_SHARE", "joined_hashes"]
