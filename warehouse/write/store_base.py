"""Shared pieces of the store's write path: page counts, lookups, lineage and staff.

Split from ``warehouse.write.store`` by noun; ``store`` stays the public entry point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from warehouse import records as r
from warehouse import schema as t
from warehouse.quotes import schema as qt
from warehouse.state import StreamKey
from warehouse.write.bulk import LIST_CHUNK, LIST_PARAM, executemany, id_list, list_values
from warehouse.write.bulk_pg import update_by_id
from warehouse.write.upsert import chunks, insert_ignore

IN_CHUNK = 900
_LINEAGE_MOVES = ("payload_hash", "first_seen", "last_seen", "deleted_at", "locator")
"""What a lineage row that stays gets anew (its key and unified row are the same)."""


@dataclass
class PageStats:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    quarantined: int = 0
    dropped_cells: int = 0
    by_entity: dict[str, int] = field(default_factory=dict)

    def add(self, other: PageStats) -> None:
        self.dropped_cells += other.dropped_cells
        self.inserted += other.inserted
        self.updated += other.updated
        self.deleted += other.deleted
        self.quarantined += other.quarantined
        for k, v in other.by_entity.items():
            self.by_entity[k] = self.by_entity.get(k, 0) + v

    def counts(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "quarantined": self.quarantined,
        }


ENTITY = {
    r.Organization: "organization",
    r.Person: "person",
    r.Deal: "deal",
    r.Activity: "activity",
    r.Order: "order",
    r.Product: "product",
    r.DealLineItem: "deal_line_item",
}


ENTITY_TABLE: dict[str, Any] = {
    "organization": t.table(t.Organization),
    "person": t.table(t.Person),
    "deal": t.table(t.Deal),
    "activity": t.table(t.Activity),
    "order": t.table(t.Order),
    "product": t.table(qt.Product),
    "deal_line_item": t.table(qt.DealLineItem),
}


def _select_in(conn: Connection, stmt_for: Any, values: Iterable[Any]) -> list[Any]:
    """Rows of ``stmt_for(values)`` for many values, the list bound as one parameter.

    ``stmt_for`` gets a subquery of the values (``col.in_(part)``); the statement is
    compiled once and cached, whatever the number of values (``bulk.list_values``).
    """
    vals = list(values)
    out: list[Any] = []
    if not vals:
        return out
    stmt = stmt_for(list_values(conn, vals))
    for part in chunks(vals, LIST_CHUNK):
        out.extend(conn.execute(stmt, {LIST_PARAM: id_list(conn, part)}).all())
    return out


def _run_in(conn: Connection, stmt_for: Any, values: Sequence[Any]) -> None:
    """Execute ``stmt_for(values)`` (an UPDATE or DELETE), the list bound as one parameter."""
    if not values:
        return
    stmt = stmt_for(list_values(conn, values))
    for part in chunks(list(values), LIST_CHUNK):
        conn.execute(stmt, {LIST_PARAM: id_list(conn, part)})


def retire(conn: Connection, entity: str, ids: Sequence[int], ts: datetime) -> None:
    """Mark unified rows deleted where no live source row still has them."""
    sr = t.SourceRecord
    table = ENTITY_TABLE[entity]
    live = (
        select(sr.id)
        .where(sr.entity == entity, sr.entity_id == table.c.id, sr.deleted_at.is_(None))
        .exists()
    )
    _run_in(
        conn,
        lambda part: (
            update(table)
            .where(table.c.id.in_(part), ~live, table.c.deleted_at.is_(None))
            .values(deleted_at=ts)
        ),
        list(ids),
    )


_PLAIN = frozenset({str, int, float, bool, bytes, type(None), datetime, date, Decimal})
"""Column value types that are never JSON containers (equal value and type is the same)."""


def _as_stored(value: Any) -> Any:
    """A column value in a form that compares equal only to the same value of the same
    type: Python's ``True == 1 == 1.0`` must not hide a change (a JSON cell, an amount), so
    scalars carry their type and JSON compares as its sorted text. A doubt reads as a
    change, which only means writing the row as before."""
    if isinstance(value, dict | list):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            return (type(value), repr(value))
    return (type(value), value)


def _same_stored(old: tuple[Any, ...] | None, new: tuple[Any, ...]) -> bool:
    """Whether a row's stored values (as read back) are the new ones, by ``_as_stored``'s
    rule, cheaply: equal values of equal types (both compared in C), and only the JSON
    values (dicts, lists) compared again as sorted text. Values Python finds unequal are a
    change (or a doubt, which only means writing the row as before)."""
    if old is None or old != new:
        return False
    types = tuple(map(type, old))
    if types != tuple(map(type, new)):
        return False
    return all(
        _as_stored(old[i]) == _as_stored(new[i])
        for i, kind in enumerate(types)
        if kind not in _PLAIN and isinstance(old[i], dict | list)
    )


def _dedupe(rows: list[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    """The first row of each ``key`` value, in order."""
    first: dict[Any, dict[str, Any]] = {}
    get = itemgetter(*key)
    for row in rows:
        first.setdefault(get(row), row)
    return list(first.values())


class WriterBase:
    """Bulk writes for one page; every method issues a handful of statements per page."""

    def __init__(self, conn: Connection, key: StreamKey, ts: datetime, stats: PageStats) -> None:
        self.conn = conn
        self.key = key
        self.ts = ts
        self.seen = ts
        """When the source was read (``last_seen``): the stream run's start, so all records of
        one run are equally recent whatever page they landed on (survivorship's most recent)."""
        self.stats = stats
        self._staff: dict[str, int] = {}
        self._page_orgs: dict[str, int] = {}  # source id → its company row (this stream)
        self._ref_orgs: dict[str, int] = {}  # reference source id → reference record
        self._page_people: dict[str, int] = {}  # source id → its person row
        self.locators: dict[str, str] = {}  # source id → where it sits in its file
        self._lineage_cache: dict[str, dict[str, list[tuple[int, int | None, datetime]]]] = {}
        self.absent: set[str] = set()
        """Source ids known to have no lineage in this stream (see ``apply_page``)..."""
        self._recorded: dict[str, set[str]] = {}
        """... until this page records some: per entity, the ids whose lineage it wrote."""

    # -- lineage -------------------------------------------------------------------------
    def _lineage_rows(
        self, entity: str, source_ids: Iterable[str]
    ) -> dict[str, list[tuple[int, int | None, datetime]]]:
        """Each source id's lineage rows of ``entity``: (row id, entity id, first seen).

        Kept for the page: ``_record_lineage`` of the same ids needs the same rows, so a
        page reads its lineage once, not twice, until it rewrites it.
        """
        known = self._lineage_cache.setdefault(entity, {})
        want = {s for s in source_ids if s not in known}
        if self.absent and want:
            none = (want & self.absent) - self._recorded.get(entity, set())
            for s in none:
                known[s] = []
            want -= none
        if want:
            sr = t.SourceRecord
            for s in want:
                known[s] = []
            for rid, sid, eid, fs in _select_in(
                self.conn,
                lambda part: select(sr.id, sr.source_id, sr.entity_id, sr.first_seen).where(
                    sr.connector == self.key.connector,
                    sr.stream == self.key.stream,
                    sr.entity == entity,
                    sr.source_id.in_(part),
                ),
                want,
            ):
                known[sid].append((rid, eid, fs))
        return known

    def _lineage(self, entity: str, source_ids: Sequence[str]) -> dict[str, int]:
        rows = self._lineage_rows(entity, source_ids)
        out: dict[str, int] = {}
        for sid in source_ids:
            for _, eid, _ in rows[sid]:
                if eid is not None:
                    out[sid] = eid
        return out

    def _record_lineage(
        self, entity: str, items: Sequence[tuple[str, str, int]], fresh: Iterable[int] = ()
    ) -> None:
        """(source_id, payload_hash, entity_id) → replace the lineage of those source rows.

        A source row may produce several unified rows (a recurring meeting's occurrences);
        rows it produced before but no longer does are retired unless another source still
        has them. ``fresh`` are rows this page inserted: never deleted, nothing to revive.
        A lineage row that stays (same source row, same unified row) is updated where it
        is, so a changed record rewrites one table row, not its two index entries as well.
        """
        if not items:
            return
        sr = t.SourceRecord
        sids = sorted({s for s, _, _ in items})
        cached = self._lineage_rows(entity, sids)
        self._recorded.setdefault(entity, set()).update(sids)  # now they have: ask again
        old = [(rid, sid, eid, fs) for sid in sids for rid, eid, fs in cached.pop(sid)]
        first: dict[str, datetime] = {}
        for _, sid, _, fs in old:
            if sid not in first or fs < first[sid]:
                first[sid] = fs
        rows: list[dict[str, Any]] = [
            {
                "connector": self.key.connector,
                "stream": self.key.stream,
                "source_id": sid,
                "entity": entity,
                "entity_id": eid,
                "payload_hash": h,
                "first_seen": first.get(sid, self.seen),
                "last_seen": self.seen,
                "deleted_at": None,
                "locator": self.locators.get(sid),
            }
            for sid, h, eid in sorted({(s, h, e) for s, h, e in items})
        ]
        rows = _dedupe(rows, ("source_id", "entity_id"))
        wanted = {(row["source_id"], row["entity_id"]) for row in rows}
        stay = {(sid, eid): rid for rid, sid, eid, _ in old if (sid, eid) in wanted}
        gone = [rid for rid, sid, eid, _ in old if stay.get((sid, eid)) != rid]
        if gone:
            _run_in(self.conn, lambda part: delete(sr).where(sr.id.in_(part)), gone)
        moved = [
            {"b_id": rid, **{c: row[c] for c in _LINEAGE_MOVES}}
            for row in rows
            if (rid := stay.get((row["source_id"], row["entity_id"]))) is not None
        ]
        update_by_id(self.conn, t.table(sr), moved)
        executemany(
            self.conn,
            insert(sr),
            [row for row in rows if (row["source_id"], row["entity_id"]) not in stay],
        )
        table = ENTITY_TABLE[entity]
        now_ids = {eid for _, _, eid in items}
        revived = sorted(now_ids.difference(fresh))
        if revived:
            _run_in(
                self.conn,
                lambda part: (
                    update(table)
                    .where(table.c.id.in_(part), table.c.deleted_at.is_not(None))
                    .values(deleted_at=None)
                ),
                revived,
            )
        dropped = sorted({eid for _, _, eid, _ in old if eid is not None} - now_ids)
        if dropped:
            retire(self.conn, entity, dropped, self.ts)

    def _update_rows(self, model: Any, ups: Sequence[dict[str, Any]]) -> None:
        """UPDATE rows by id (``b_id``), skipping those whose columns already hold these
        values: a re-read record whose source row changed elsewhere (a contact's title)
        leaves its company and deal rows, their indexes and ``updated_at`` untouched.
        Values compare as the database gives them back; a value that reads back in
        another form is written again, as before."""
        if not ups:
            return
        table = t.table(model)
        cols = [c for c in ups[0] if c not in ("b_id", "updated_at")]
        current = {
            row[0]: tuple(row[1:])
            for row in _select_in(
                self.conn,
                lambda part: select(table.c.id, *(table.c[c] for c in cols)).where(
                    table.c.id.in_(part)
                ),
                [u["b_id"] for u in ups],
            )
        }
        get = itemgetter(*cols) if len(cols) > 1 else (lambda u: (u[cols[0]],))
        changed = [u for u in ups if not _same_stored(current.get(u["b_id"]), get(u))]
        update_by_id(self.conn, table, changed)

    def _count(self, entity: str, inserted: int, updated: int) -> None:
        self.stats.inserted += inserted
        self.stats.updated += updated
        self.stats.by_entity[entity] = self.stats.by_entity.get(entity, 0) + inserted + updated

    # -- staff ---------------------------------------------------------------------------
    def staff_ids(self, emails: Iterable[str], names: Mapping[str, str | None]) -> dict[str, int]:
        want = {e for e in emails if e and e not in self._staff}
        if want:
            su = t.StaffUser
            insert_ignore(
                self.conn,
                t.table(su),
                [
                    {
                        "email": e,
                        "name": names.get(e),
                        "visibility": "own",
                        "time_zone": "Asia/Tokyo",
                    }
                    for e in sorted(want)
                ],
                ["email"],
            )
            # A colleague first met without a name (a deal's owner column) gets the name a
            # later record gives; of two spellings the smaller stays, so streams writing in
            # any order (parallel syncs) leave the same name.
            named = [{"b_email": e, "b_name": names[e]} for e in sorted(want) if names.get(e)]
            if named:
                tbl = t.table(su)
                self.conn.execute(
                    update(tbl)
                    .where(
                        tbl.c.email == bindparam("b_email"),
                        (tbl.c.name.is_(None)) | (tbl.c.name > bindparam("b_name")),
                    )
                    .values(name=bindparam("b_name")),
                    named,
                )
            for e, i in _select_in(
                self.conn, lambda part: select(su.email, su.id).where(su.email.in_(part)), want
            ):
                self._staff[e] = i
        return self._staff
