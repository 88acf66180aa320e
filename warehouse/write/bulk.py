"""Bulk writes at page size: SQLAlchemy's semantics, without its per-row cost on SQLite.

Split out of ``store`` so the write path reads as linking and lineage rules; everything
here is about getting a page of rows into the database fast and is tested to store exactly
what ``Connection.execute`` would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    ClauseElement,
    Connection,
    String,
    Text,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from warehouse import schema as t
from warehouse.write.upsert import insert_ignore


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
    if conn.dialect.name == "postgresql" and len(rows) >= 8:
        _pg_executemany(conn, stmt, rows)
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
    params: list[Any] = [tuple(v) for v in _bind(flat, typed)] if typed else flat
    conn.exec_driver_sql(compiled.string, params)


def _processed(
    compiled: Any, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> list[list[Any]]:
    """Each row's values in ``keys`` order through SQLAlchemy's bind processors (JSON,
    UTC timestamps)."""
    procs: Mapping[str, Any] = compiled._bind_processors
    typed = [(i, procs[k]) for i, k in enumerate(keys) if k in procs]
    return _bind(([row[k] for k in keys] for row in rows), typed)


def _bind(rows: Iterable[Sequence[Any]], typed: Sequence[tuple[int, Any]]) -> list[list[Any]]:
    """Apply the bind processors to each row's positional values; a repeated timestamp
    (the page's clock, a lineage row's first sight: equal values, often distinct objects
    read back row by row) is processed once per column, not once per row. Equal
    timestamps are the same instant, which is all a timestamp's processor keeps."""
    memos: list[dict[datetime, Any]] = [{} for _ in typed]
    out: list[list[Any]] = []
    for values in rows:
        vals = list(values)
        for (i, proc), memo in zip(typed, memos, strict=True):
            v = vals[i]
            if type(v) is datetime:
                done = memo.get(v, _MISSING)
                if done is _MISSING:
                    done = memo[v] = proc(v)
                vals[i] = done
            else:
                vals[i] = proc(v)
        out.append(vals)
    return out


_MISSING = object()


def _pg_executemany(conn: Connection, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """PostgreSQL: a plain INSERT goes in by ``COPY``; anything else is one driver-level
    ``executemany`` (psycopg pipelines it) with SQLAlchemy's processors applied once."""
    keys = list(rows[0])
    if any(list(row) != keys for row in rows):
        conn.execute(stmt, list(rows))
        return
    compiled = stmt.compile(dialect=conn.dialect, column_keys=keys)
    if type(stmt) is Insert and not stmt._returning and stmt._values is None:
        copy_rows(conn, stmt.table, keys, _processed(compiled, rows, keys))
        return
    if compiled.literal_execute_params or set(compiled.binds) != set(keys):
        conn.execute(stmt, list(rows))
        return
    params = [dict(zip(keys, vals, strict=True)) for vals in _processed(compiled, rows, keys)]
    conn.exec_driver_sql(compiled.string, params)


def copy_rows(
    conn: Connection, table: Any, keys: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """``COPY table (keys) FROM STDIN`` inside the connection's transaction.

    The fastest way into PostgreSQL (no statement per row, no parameter parsing), for rows
    already through the bind processors. A driver error is raised as SQLAlchemy's
    ``DBAPIError`` like any statement's, with no row values in it.
    """
    import psycopg

    quote = conn.dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(quote(k) for k in keys)}) FROM STDIN"
    driver: Any = conn.connection.driver_connection  # psycopg's own, for its COPY API
    try:
        with driver.cursor() as cur, cur.copy(sql) as cp:
            for vals in rows:
                cp.write_row(vals)
    except psycopg.Error as exc:
        raise DBAPIError.instance(
            sql, None, exc, psycopg.Error, hide_parameters=True, dialect=conn.dialect
        ) from exc


def many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """One prepared statement for many rows through the driver: no statement compiled per
    chunk, no dict per row (``?`` placeholders become ``%s`` for drivers that use those)."""
    if not rows:
        return
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    for lo in range(0, len(rows), 20000):
        conn.exec_driver_sql(sql, list(rows[lo : lo + 20000]))


def driver_rows(conn: Connection, q: ClauseElement | str, params: Sequence[Any] = ()) -> list[Any]:
    """Every row of a query whose parameters are plain numbers and names, as the driver's
    own tuples, unconverted (a date is ISO text on SQLite, a JSON column text or an object:
    the caller takes either): an identity run reads a row per person, per company and per
    contact address, and a result row object per row cost as much as the query itself.
    ``q`` is a statement, or the driver's SQL with its ``params``."""
    driver: Any = conn.connection.driver_connection
    cur = driver.cursor()
    try:
        if isinstance(q, str):
            cur.execute(q, tuple(params))
        else:
            cur.execute(
                str(q.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            )
        return list(cur.fetchall())
    finally:
        cur.close()


def put_rows(
    conn: Connection,
    table: Any,
    columns: Sequence[str],
    sql: str,
    rows: Sequence[Sequence[Any]],
    fresh: bool,
) -> None:
    """``sql`` (an insert of ``columns``) for each row through ``many``; when nothing can
    conflict (``fresh``: the caller emptied the rows' range, or there were none), PostgreSQL
    takes them by ``COPY`` instead. Values are already through the bind processors."""
    if fresh and conn.dialect.name == "postgresql":
        copy_rows(conn, table, columns, rows)
    else:
        many(conn, sql, rows)


def bound(conn: Connection, column: Any) -> Callable[[Any], Any]:
    """A value of ``column`` as SQLAlchemy itself would hand it to this driver (a timestamp
    in UTC, a dict as JSON), for statements sent through ``many`` or ``put_rows``."""
    proc = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return proc if proc is not None else _same


def _same(value: Any) -> Any:
    return value


def placeholder(conn: Connection) -> str:
    """The driver's parameter marker, for statements sent with ``exec_driver_sql``."""
    return "?" if conn.dialect.name == "sqlite" else "%s"


def member(conn: Connection, column: str, of: str | None = None) -> str:
    """``column`` is one of a list bound as ONE parameter (see ``id_list``).

    One parameter per page instead of an ``IN (…)`` of 900 bound values per chunk: the
    statement text never changes, so each database prepares it once, and nothing is built
    per id in Python. SQLite unpacks a JSON array (``json_each``), PostgreSQL an array.

    ``of``: the list's SQL type. PostgreSQL then takes the list as a set it joins
    (``IN (SELECT unnest(…))``), a plan that holds without the table's statistics: with none
    yet (a copied database, a server without autovacuum), ``= ANY`` of a long list was
    planned as a scan testing the whole list against every row (0.7 s for 838 ids among
    150 k rows, where the joined set takes milliseconds)."""
    if conn.dialect.name == "sqlite":
        return f"{column} IN (SELECT value FROM json_each(?))"
    if of is not None:
        return f"{column} IN (SELECT unnest(%s::{of}[]))"
    return f"{column} = ANY(%s)"


def id_list(conn: Connection, values: Sequence[Any]) -> Any:
    """The one parameter ``member`` binds: a JSON array on SQLite, a list on PostgreSQL."""
    if conn.dialect.name == "sqlite":
        return orjson.dumps(list(values)).decode()
    return list(values)


LIST_PARAM = "in_list"
LIST_CHUNK = 50_000
"""Most values bound as one list (a bound on one statement's work, not a database limit)."""


def list_values(conn: Connection, values: Sequence[Any]) -> Any:
    """A ``SELECT`` of the values of a list bound as the one parameter ``LIST_PARAM``.

    ``col.in_(list_values(conn, vals))`` with ``{LIST_PARAM: id_list(conn, vals)}`` replaces
    an expanding ``IN`` of up to 900 parameters per chunk: SQLAlchemy rebuilt that IN for
    every chunk (more CPU than the lookup itself), and a page needed several statements.
    The array is typed on PostgreSQL (``unnest`` of an untyped literal is ambiguous).
    """
    if conn.dialect.name == "sqlite":
        return select(
            func.json_each(bindparam(LIST_PARAM, type_=String())).table_valued("value").c.value
        )
    from sqlalchemy.dialects.postgresql import ARRAY

    ints = all(isinstance(v, int) for v in values)
    typ = ARRAY(BigInteger() if ints else Text())
    return select(func.unnest(bindparam(LIST_PARAM, type_=typ)))


class PlannerStats:
    """Keeps PostgreSQL's planner statistics of the write path's tables current in a pass.

    A table that was never analysed (new, or on a server without autovacuum) looks empty to
    the planner, which then scans a whole stream's lineage for each page's id lookup
    instead of probing the index: 3 ms a row at 22k rows and rising. So the tables are
    analysed (a bounded sample) after a pass's first ``first`` rows when they were empty or
    never analysed, then each time the rows it wrote reach ``GROWTH`` times what they were
    at the last analysis. Once analysed, the planner scales the row counts by the tables'
    current size and keeps the key columns' distinctness as a fraction, so key lookups keep
    their index plans as the tables grow; analysing at every doubling cost ~9 % of the
    server's CPU in a 100k-row first sync (0.7 of 8.1 s). A small change to a big table
    never pays for it. SQLite plans these lookups by index without statistics.
    """

    GROWTH = 8

    TABLES = (
        "source_record",
        "organization",
        "person",
        "person_email",
        "person_phone",
        "deal",
        "activity",
    )

    def __init__(self, first: int = 1000) -> None:
        self.first = first
        self.written = 0
        self.next_at: int | None = None

    def after_page(self, conn: Connection, written: int) -> bool:
        """Count a page's written rows; analyse when due. Whether it analysed."""
        if conn.dialect.name != "postgresql":
            return False
        if self.next_at is None:
            held = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass('source_record')"
            ).scalar()
            self.next_at = max(self.first, int(held or 0))
        self.written += written
        if self.written < self.next_at:
            return False
        conn.exec_driver_sql(f"ANALYZE {', '.join(self.TABLES)}")
        self.next_at = self.GROWTH * self.written
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
    # PostgreSQL: ids drawn from the table's own sequence in one statement, then the rows
    # go in by COPY (an INSERT … RETURNING of a page cost ~250 µs a row in SQLAlchemy).
    seq = conn.exec_driver_sql(
        "SELECT pg_get_serial_sequence(%s, 'id')", (table.name,)
    ).scalar_one()
    ids = [
        int(i)
        for (i,) in conn.exec_driver_sql(
            "SELECT nextval(%s) FROM generate_series(1, %s)", (seq, len(rows))
        )
    ]
    executemany(conn, insert(table), [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
    return ids


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
