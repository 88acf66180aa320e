"""Bulk writes at page size: SQLAlchemy's semantics, without its per-row cost on SQLite.

Split out of ``store`` so the write path reads as linking and lineage rules; everything
here is about getting a page of rows into the database fast and is tested to store exactly
what ``Connection.execute`` would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from warehouse import schema as t
from warehouse.upsert import insert_ignore


def executemany(conn: Connection, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """``conn.execute(stmt, rows)``, minus SQLAlchemy's per-row overhead on SQLite.

    For a page of thousands of rows, building each parameter set through the compiled
    statement costs more than SQLite's own work. On SQLite the statement is compiled once
    and rows go to the driver's ``executemany`` with SQLAlchemy's own type processors
    applied (so stored values are byte-for-byte what ``execute`` writes); a value object
    repeated across rows (the page timestamp) is processed once. Anything the shortcut
    cannot express (a default to fill, a missing key) takes the ordinary path.
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite" or len(rows) < 8:
        conn.execute(stmt, list(rows))
        return
    keys = list(rows[0])
    compiled = stmt.compile(dialect=conn.dialect, column_keys=keys)
    order = compiled.positiontup
    if order is None or not set(order) <= set(keys) or compiled.literal_execute_params:
        conn.execute(stmt, list(rows))
        return
    procs: Mapping[str, Any] = compiled._bind_processors
    typed = [(i, procs[n]) for i, n in enumerate(order) if n in procs]
    try:
        if len(order) == 1:
            flat = [(row[order[0]],) for row in rows]
        else:
            get = itemgetter(*order)
            flat = [get(row) for row in rows]
    except KeyError:
        conn.execute(stmt, list(rows))
        return
    params: list[Any] = flat
    if typed:
        memo: dict[int, tuple[Any, Any]] = {}
        params = []
        for values in flat:
            vals = list(values)
            for i, proc in typed:
                v = vals[i]
                hit = memo.get(id(v))
                if hit is not None and hit[0] is v:
                    vals[i] = hit[1]
                    continue
                vals[i] = out = proc(v)
                if isinstance(v, datetime):
                    memo[id(v)] = (v, out)
            params.append(tuple(vals))
    conn.exec_driver_sql(compiled.string, params)


def placeholder(conn: Connection) -> str:
    """The driver's parameter marker, for statements sent with ``exec_driver_sql``."""
    return "?" if conn.dialect.name == "sqlite" else "%s"


def member(conn: Connection, column: str) -> str:
    """``column`` is one of a list bound as ONE parameter (see ``id_list``).

    One parameter per page instead of an ``IN (…)`` of 900 bound values per chunk: the
    statement text never changes, so each database prepares it once, and nothing is built
    per id in Python. SQLite unpacks a JSON array (``json_each``), PostgreSQL an array.
    """
    if conn.dialect.name == "sqlite":
        return f"{column} IN (SELECT value FROM json_each(?))"
    return f"{column} = ANY(%s)"


def id_list(conn: Connection, values: Sequence[Any]) -> Any:
    """The one parameter ``member`` binds: a JSON array on SQLite, a list on PostgreSQL."""
    if conn.dialect.name == "sqlite":
        return orjson.dumps(list(values)).decode()
    return list(values)


class PlannerStats:
    """Keeps PostgreSQL's planner statistics of the write path's tables current in a pass.

    A table that was never analysed (new, or on a server without autovacuum) looks empty to
    the planner, which then scans a whole stream's lineage for each page's id lookup
    instead of probing the index: 3 ms a row at 22k rows and rising. After the first page
    of a pass and each time the rows written in it double, the tables are analysed (a
    bounded sample, tens of milliseconds), so plans follow the data. SQLite plans these
    lookups by index without statistics.
    """

    TABLES = (
        "source_record",
        "organization",
        "person",
        "person_email",
        "person_phone",
        "deal",
        "activity",
    )

    def __init__(self, first: int = 1) -> None:
        self.written = 0
        self.next_at = first

    def after_page(self, conn: Connection, written: int) -> bool:
        """Count a page's written rows; analyse when due. Whether it analysed."""
        if conn.dialect.name != "postgresql":
            return False
        self.written += written
        if self.written < self.next_at:
            return False
        conn.exec_driver_sql(f"ANALYZE {', '.join(self.TABLES)}")
        self.next_at = 2 * self.written
        return True


def insert_ignore_fast(
    conn: Connection, table: Any, rows: Sequence[Mapping[str, Any]], key: Sequence[str]
) -> None:
    """``upsert.insert_ignore``, through ``executemany``'s SQLite shortcut for big pages."""
    if conn.dialect.name == "sqlite" and rows:
        executemany(conn, sqlite_insert(table).on_conflict_do_nothing(index_elements=key), rows)
    else:
        insert_ignore(conn, table, rows, key)


def insert_ids(conn: Connection, model: type[t.Base], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows and return their new ids, in row order.

    PostgreSQL: one ``INSERT … RETURNING`` per batch. SQLite cannot promise RETURNING order
    for a multi-row insert, so SQLAlchemy would fall back to one statement per row (most of
    a big sync's time); instead the ids are allocated after ``max(id)``, as SQLite itself
    would. The engine writes in ``BEGIN IMMEDIATE`` transactions, so no other writer can
    take them meanwhile; in a deferred transaction WAL makes a writer whose snapshot went
    stale fail (SQLITE_BUSY_SNAPSHOT) rather than overwrite.
    """
    if not rows:
        return []
    table = t.table(model)
    if conn.dialect.name == "sqlite":
        start = int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())
        ids = list(range(start + 1, start + 1 + len(rows)))
        executemany(
            conn, insert(table), [{**row, "id": i} for row, i in zip(rows, ids, strict=True)]
        )
        return ids
    got = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return [int(i) for i in got.scalars().all()]


def insert_new_ids(
    conn: Connection, model: type[t.Base], rows: Sequence[dict[str, Any]], key: str
) -> tuple[list[int | None], set[Any]]:
    """``insert_ids`` for rows with a unique ``key`` that another writer may insert first.

    On PostgreSQL a concurrent transaction can commit the same key between our read and our
    insert; ``ON CONFLICT DO NOTHING`` lets both converge on its row instead of failing with
    ``UniqueViolation``. Returns the new ids in row order (None where the key was taken) and
    the keys taken. SQLite writers hold the write lock from their first read
    (``BEGIN IMMEDIATE``), so no key can be taken there meanwhile.
    """
    if conn.dialect.name != "postgresql":
        return list(insert_ids(conn, model, rows)), set()
    if not rows:
        return [], set()
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    table = t.table(model)
    stmt = (
        pg_insert(table)
        .on_conflict_do_nothing(index_elements=[key])
        .returning(table.c.id, table.c[key])
    )
    got: dict[Any, int] = {}
    for part in range(0, len(rows), 1000):
        for i, k in conn.execute(stmt, list(rows[part : part + 1000])):
            got[k] = int(i)
    ids = [got.get(r[key]) for r in rows]
    return ids, {r[key] for r in rows if r[key] not in got}
