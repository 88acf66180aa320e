"""Writing a page of unified records: one transaction, bulk statements, lineage and cursor.

``apply_page`` is the only way records enter the store. It runs inside the caller's
transaction, so a page's rows, its lineage, its quarantined records and the stream's cursor
commit together or not at all.

Linking rules at this layer: none across records. A source row keeps the unified row it
produced before (lineage); every other person or organization record is a new row, whatever
address, 法人番号 or name it shares with others: only the identity resolver links them
(``warehouse.identity``). Activities sharing a ``key`` (a Message-ID) are one activity: the
same message, not two records of a customer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from warehouse import records as r
from warehouse import schema as t
from warehouse.privacy.held import hold
from warehouse.quotes.catalog import write_catalog
from warehouse.state import Quarantined, StreamKey, now, quarantine, save_cursor
from warehouse.write.bulk import id_list, member, placeholder
from warehouse.write.store_base import (
    ENTITY,
    ENTITY_TABLE,
    IN_CHUNK,
    PageStats,
    _dedupe,
    _select_in,
    retire,
)
from warehouse.write.store_scan import joined_hashes
from warehouse.write.store_writer import Writer as _Writer
from warehouse.write.upsert import chunks


def unchanged_ids(conn: Connection, key: StreamKey, hashes: Mapping[str, str]) -> set[str]:
    """Source ids whose stored payload hash equals the given one (and are not deleted).

    The flow asks this before mapping, so an unchanged row costs one hash and no writes.
    A source row may have several lineage rows (one per entity it produced); the database
    folds them, so one row per candidate id comes back and no timestamp is parsed. One
    statement per page, its id list bound as one parameter and sent straight to the
    driver: this runs for every row of every sync, changed or not.
    """
    if not hashes:
        return set()
    ph = placeholder(conn)
    sql = (
        "SELECT source_id, max(payload_hash) FROM source_record "
        f"WHERE connector = {ph} AND stream = {ph} AND {member(conn, 'source_id')} "
        "GROUP BY source_id "
        "HAVING count(deleted_at) = 0 AND min(payload_hash) = max(payload_hash)"
    )
    rows = conn.exec_driver_sql(sql, (key.connector, key.stream, id_list(conn, list(hashes))))
    return {sid for sid, h in rows if h == hashes.get(sid)}


def stored_hashes(
    conn: Connection, key: StreamKey, source_ids: Sequence[str]
) -> dict[str, tuple[str, str, bool]]:
    """Per source id with lineage in this stream: its highest and lowest stored payload hash
    and whether the row is unchanged-able (one hash on every lineage row, none deleted: the
    rule of ``unchanged_ids``). One statement, the id list bound as one parameter."""
    if not source_ids:
        return {}
    ph = placeholder(conn)
    sql = (
        "SELECT source_id, max(payload_hash), min(payload_hash), count(deleted_at) "
        f"FROM source_record WHERE connector = {ph} AND stream = {ph} "
        f"AND {member(conn, 'source_id')} GROUP BY source_id"
    )
    rows = conn.exec_driver_sql(sql, (key.connector, key.stream, id_list(conn, source_ids)))
    return {sid: (hi, lo, hi == lo and not dead) for sid, hi, lo, dead in rows}


def stream_hashes(conn: Connection, key: StreamKey, batch: int = 50_000) -> Iterator[Sequence[Any]]:
    """Every lineage row's (payload hash, live) of a stream, in batches, in one scan: what
    a pass compares raw records with before decoding them. Rows without a hash (people
    first seen as mail participants) are not source rows and are left out."""
    ph = placeholder(conn)
    sql = (
        "SELECT payload_hash, deleted_at IS NULL FROM source_record "
        f"WHERE connector = {ph} AND stream = {ph} AND payload_hash <> ''"
    )
    result = conn.exec_driver_sql(
        sql, (key.connector, key.stream), execution_options={"stream_results": True}
    )
    # The driver's cursor itself (server-side on PostgreSQL): rows as plain tuples, without
    # a Row object each, since a million-row stream is scanned in full.
    cursor = result.cursor
    try:
        while part := cursor.fetchmany(batch):
            yield part
    finally:
        result.close()


def has_lineage(conn: Connection, key: StreamKey) -> bool:
    """Whether the stream has any lineage row at all (one index probe)."""
    ph = placeholder(conn)
    sql = f"SELECT 1 FROM source_record WHERE connector = {ph} AND stream = {ph} LIMIT 1"
    return conn.exec_driver_sql(sql, (key.connector, key.stream)).first() is not None


def live_hashes(conn: Connection, key: StreamKey) -> Iterator[tuple[str, str]]:
    """(source id, payload hash) of every live lineage row of a stream, by source id, streamed
    (vanished-row detection when a pass skipped rows by hash and did not learn their ids)."""
    ph = placeholder(conn)
    sql = (
        "SELECT source_id, payload_hash FROM source_record "
        f"WHERE connector = {ph} AND stream = {ph} AND deleted_at IS NULL "
        "AND payload_hash <> '' ORDER BY source_id"
    )
    result = conn.exec_driver_sql(
        sql, (key.connector, key.stream), execution_options={"stream_results": True}
    )
    for part in result.partitions(5000):
        yield from part


def apply_page(
    conn: Connection,
    key: StreamKey,
    *,
    records: Sequence[r.Record] = (),
    deleted: Sequence[str] = (),
    quarantined: Sequence[Quarantined] = (),
    cursor: dict[str, Any] | None = None,
    write_cursor: bool = True,
    run_id: str | None = None,
    seen_at: datetime | None = None,
    new_ids: Iterable[str] = (),
) -> PageStats:
    """Write one page: records, deletions, quarantine and (last) the cursor.

    ``seen_at`` is when the stream run started (the records' ``last_seen``); default now.
    ``new_ids``: source ids the caller knows have no lineage in this stream (a first
    sync's rows), so their lineage is not looked up.
    """
    # An erased customer's rows are held back with a reason (warehouse.privacy.held).
    records, quarantined = hold(conn, key, records, quarantined)
    ts = now()
    stats = PageStats()
    w = _Writer(conn, key, ts, stats)
    if seen_at is not None:
        w.seen = seen_at
    w.absent = set(new_ids)
    w.locators = {x.source_id: x.locator for x in records if x.locator}
    orgs = [x for x in records if isinstance(x, r.Organization)]
    people = [x for x in records if isinstance(x, r.Person)]
    deals = [x for x in records if isinstance(x, r.Deal)]
    acts = [x for x in records if isinstance(x, r.Activity)]
    orders = [x for x in records if isinstance(x, r.Order)]
    catalog = [x for x in records if isinstance(x, r.Product | r.DealLineItem)]
    cells = [x for x in records if isinstance(x, r.CellIssue)]
    if orgs:
        w.organizations(orgs)
    if people:
        w.people(people)
    if deals:
        w.deals(deals)
    if acts:
        w.activities(acts)
    if orders:
        w.orders(orders)
    if catalog:
        write_catalog(w, catalog)
    if deleted:
        stats.deleted += mark_deleted(conn, key, deleted, ts)
    stats.quarantined += quarantine(conn, key, quarantined, run_id)
    if cells:  # the rows landed; each unusable cell is kept against its row
        stats.dropped_cells += quarantine(
            conn,
            key,
            [
                Quarantined(
                    x.source_id,
                    f"cell {x.column}: {x.reason}; dropped, row kept",
                    x.value,
                    path=x.locator,
                )
                for x in cells
            ],
            run_id,
        )
    if write_cursor:
        save_cursor(conn, key, cursor, run_id)
    return stats


def mark_deleted(conn: Connection, key: StreamKey, source_ids: Sequence[str], ts: datetime) -> int:
    """Mark source rows deleted; a unified row dies only when no live source still has it."""
    sr = t.SourceRecord
    hit = _select_in(
        conn,
        lambda part: select(sr.id, sr.entity, sr.entity_id).where(
            sr.connector == key.connector,
            sr.stream == key.stream,
            sr.source_id.in_(part),
            sr.deleted_at.is_(None),
        ),
        source_ids,
    )
    if not hit:
        return 0
    for part in chunks([row[0] for row in hit], IN_CHUNK):
        conn.execute(update(sr).where(sr.id.in_(part)).values(deleted_at=ts))
    by_entity: dict[str, set[int]] = {}
    for _, entity, eid in hit:
        if eid is not None:
            by_entity.setdefault(entity, set()).add(eid)
    for entity, ids in by_entity.items():
        retire(conn, entity, sorted(ids), ts)
    return len(hit)


def live_source_ids(conn: Connection, key: StreamKey) -> Iterable[str]:
    """Every live source id of a stream, streamed (for vanished-row detection)."""
    sr = t.SourceRecord
    # Per-statement option: ``conn.execution_options()`` would switch the whole connection to
    # server-side cursors, and PostgreSQL cannot DECLARE a cursor for the UPDATEs that follow.
    result = conn.execute(
        select(sr.source_id)
        .where(
            sr.connector == key.connector,
            sr.stream == key.stream,
            sr.deleted_at.is_(None),
            sr.payload_hash != "",  # people first seen as mail participants are not rows
        )
        .distinct(),
        execution_options={"yield_per": 5000},
    )
    for (sid,) in result:
        yield sid


__all__ = [
    "ENTITY",
    "ENTITY_TABLE",
    "PageStats",
    "StreamKey",
    "_dedupe",
    "apply_page",
    "has_lineage",
    "joined_hashes",
    "live_hashes",
    "live_source_ids",
    "mark_deleted",
    "retire",
    "stored_hashes",
    "stream_hashes",
    "unchanged_ids",
]
