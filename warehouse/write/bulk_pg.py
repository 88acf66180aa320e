"""Set-based page statements on PostgreSQL: rows by ``COPY`` into a staging table, then one
statement for the page.

A page's UPDATEs by id (changed rows, the lineage rows that stay) and its insert-or-ignore
rows (addresses, phones) went to the server one statement per row, pipelined: ~15 µs of
client and ~20 µs of server CPU each, more than the row's own work. Here the page's rows go
into a temporary staging table in one ``COPY`` and one ``UPDATE … FROM`` or ``INSERT …
SELECT … ON CONFLICT`` applies them all. The staging table is created once per connection
(``ON COMMIT DELETE ROWS``: it empties itself at each commit) with the target's own column
types, so values arrive exactly as the row-by-row statements stored them.

The join's plan is fixed (nested loop on the target's primary key or unique index), not
left to a planner that may have no statistics for the tables (autovacuum off or behind) and
would then hash the whole target table for a few changed rows. SQLite keeps ``executemany``
(``bulk.executemany``): there a prepared statement per row costs about what a set would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, update

from warehouse.write.bulk import _processed, copy_rows, executemany, insert_ignore_fast
from warehouse.write.upsert import insert_ignore

MIN_ROWS = 8
"""Fewer rows than this go row by row (the staging round trips would cost more)."""
_PLAN = ("enable_hashjoin", "enable_mergejoin", "jit")
"""Switched off for a page statement: the joins that would read the whole target, and JIT
(compiling a statement of a few thousand rows costs more than running it)."""


def update_by_id(conn: Connection, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """``UPDATE table SET <keys> WHERE id = b_id`` for each row (every row has the same
    keys, ``b_id`` among them); for one id given twice, the last row wins, as in order."""
    if not rows:
        return
    keys = [k for k in rows[0] if k != "b_id"]
    if conn.dialect.name != "postgresql" or len(rows) < MIN_ROWS:
        stmt = update(table).where(table.c.id == bindparam("b_id"))
        executemany(conn, stmt.values({k: bindparam(k) for k in keys}), rows)
        return
    last = list({row["b_id"]: row for row in rows}.values())
    stage = _stage(conn, table, [("id", "b_id"), *((k, k) for k in keys)], last)
    q = conn.dialect.identifier_preparer.quote
    sets = ", ".join(f"{q(k)} = s.{q(k)}" for k in keys)
    _fixed_plan(
        conn, f"UPDATE {q(table.name)} AS t SET {sets} FROM {stage} AS s WHERE t.id = s.b_id"
    )


def insert_ignore_rows(
    conn: Connection, table: Any, rows: Sequence[Mapping[str, Any]], key: Sequence[str]
) -> None:
    """Insert rows, leaving any whose ``key`` exists already (``upsert.insert_ignore``)."""
    if not rows:
        return
    keys = list(rows[0])
    if conn.dialect.name != "postgresql":
        insert_ignore_fast(conn, table, rows, key)
        return
    if len(rows) < MIN_ROWS or any(list(row) != keys for row in rows):
        insert_ignore(conn, table, rows, key)
        return
    stage = _stage(conn, table, [(k, k) for k in keys], rows)
    q = conn.dialect.identifier_preparer.quote
    cols = ", ".join(q(k) for k in keys)
    # DISTINCT ON the key: a key twice in one page is inserted once (the first), as the
    # row-by-row statements left it.
    on = ", ".join(q(k) for k in key)
    _fixed_plan(
        conn,
        f"INSERT INTO {q(table.name)} ({cols}) SELECT DISTINCT ON ({on}) {cols} "
        f"FROM {stage} ORDER BY {on}, kz_n ON CONFLICT ({on}) DO NOTHING",
    )


def _stage(
    conn: Connection,
    table: Any,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Mapping[str, Any]],
) -> str:
    """``COPY`` the rows into this connection's staging table for (table, columns), emptied
    first; columns are (target column, key in the rows). Returns the staging table's name.
    Each row is numbered (``kz_n``) in the order given."""
    q = conn.dialect.identifier_preparer.quote
    names = [k for _, k in columns]
    tag = hashlib.blake2b(repr(columns).encode(), digest_size=4).hexdigest()
    stage = f"kz_stage_{table.name}_{tag}"[:63]
    select_cols = ", ".join(f"{q(c)} AS {q(k)}" for c, k in columns)
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
        f"SELECT {select_cols}, 0 AS kz_n FROM {q(table.name)} WITH NO DATA"
    )
    conn.exec_driver_sql(f"DELETE FROM {stage}")
    cols = [c for c, _ in columns]
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=cols)
    # Each value through the target column's bind processor (JSON text, UTC timestamps).
    processed = _processed(compiled, [{c: row[k] for c, k in columns} for row in rows], cols)
    copy_rows(
        conn,
        _Named(stage),
        [*names, "kz_n"],
        [[*vals, n] for n, vals in enumerate(processed)],
    )
    return stage


class _Named:
    """What ``copy_rows`` needs of a table: its name."""

    def __init__(self, name: str) -> None:
        self.name = name


def _fixed_plan(conn: Connection, sql: str) -> None:
    """Run ``sql`` with the join by index (no hash or merge join: with the staging table
    small and the target big, only a nested loop probing the target's index is left), the
    switches restored for the rest of the transaction."""
    saved = conn.exec_driver_sql(
        "SELECT " + ", ".join(f"current_setting('{s}')" for s in _PLAN)
    ).one()
    _switch(conn, ["off"] * len(_PLAN))
    try:
        conn.exec_driver_sql(sql)
    finally:
        _switch(conn, list(saved))


def _switch(conn: Connection, values: Sequence[str]) -> None:
    conn.exec_driver_sql(
        "SELECT " + ", ".join(f"set_config('{s}', %s, true)" for s in _PLAN), tuple(values)
    )


__all__ = ["MIN_ROWS", "insert_ignore_rows", "update_by_id"]
