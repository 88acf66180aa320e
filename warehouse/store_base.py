"""Shared pieces of the store's write path: page counts, lookups, lineage and staff.

Split from ``warehouse.store`` by noun; ``store`` stays the public entry point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.sql import bindparam

from warehouse import records as r
from warehouse import schema as t
from warehouse.bulk import executemany
from warehouse.quotes import schema as qt
from warehouse.state import StreamKey
from warehouse.upsert import chunks, insert_ignore

IN_CHUNK = 900


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
    """Rows of ``stmt_for(ids)`` for many ids, in chunks the databases accept.

    The statement is built once around an expanding parameter and each chunk is bound at
    execution: building ``IN (…)`` from a list of literals costs more per id than the
    lookup itself.
    """
    vals = list(values)
    out: list[Any] = []
    if not vals:
        return out
    stmt = stmt_for(bindparam("in_values", expanding=True))
    for part in chunks(vals, IN_CHUNK):
        out.extend(conn.execute(stmt, {"in_values": list(part)}).all())
    return out


def retire(conn: Connection, entity: str, ids: Sequence[int], ts: datetime) -> None:
    """Mark unified rows deleted where no live source row still has them."""
    sr = t.SourceRecord
    table = ENTITY_TABLE[entity]
    live = (
        select(sr.id)
        .where(sr.entity == entity, sr.entity_id == table.c.id, sr.deleted_at.is_(None))
        .exists()
    )
    for part in chunks(list(ids), IN_CHUNK):
        conn.execute(
            update(table)
            .where(table.c.id.in_(part), ~live, table.c.deleted_at.is_(None))
            .values(deleted_at=ts)
        )


def _dedupe(rows: list[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for row in rows:
        k = tuple(row[c] for c in key)
        if k not in seen:
            seen.add(k)
            out.append(row)
    return out


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

    # -- lineage -------------------------------------------------------------------------
    def _lineage(self, entity: str, source_ids: Sequence[str]) -> dict[str, int]:
        sr = t.SourceRecord
        rows = _select_in(
            self.conn,
            lambda part: select(sr.source_id, sr.entity_id).where(
                sr.connector == self.key.connector,
                sr.stream == self.key.stream,
                sr.entity == entity,
                sr.source_id.in_(part),
            ),
            set(source_ids),
        )
        return {sid: eid for sid, eid in rows if eid is not None}

    def _record_lineage(self, entity: str, items: Sequence[tuple[str, str, int]]) -> None:
        """(source_id, payload_hash, entity_id) → replace the lineage of those source rows.

        A source row may produce several unified rows (a recurring meeting's occurrences);
        rows it produced before but no longer does are retired unless another source still
        has them.
        """
        if not items:
            return
        sr = t.SourceRecord
        sids = sorted({s for s, _, _ in items})
        old = _select_in(
            self.conn,
            lambda part: select(sr.id, sr.source_id, sr.entity_id, sr.first_seen).where(
                sr.connector == self.key.connector,
                sr.stream == self.key.stream,
                sr.entity == entity,
                sr.source_id.in_(part),
            ),
            sids,
        )
        first: dict[str, datetime] = {}
        for _, sid, _, fs in old:
            if sid not in first or fs < first[sid]:
                first[sid] = fs
        for part in chunks([row[0] for row in old], IN_CHUNK):
            self.conn.execute(delete(sr).where(sr.id.in_(part)))
        rows = [
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
        executemany(self.conn, insert(sr), _dedupe(rows, ("source_id", "entity_id")))
        table = ENTITY_TABLE[entity]
        now_ids = {eid for _, _, eid in items}
        revived = sorted(now_ids)
        for part in chunks(revived, IN_CHUNK):
            self.conn.execute(
                update(table)
                .where(table.c.id.in_(part), table.c.deleted_at.is_not(None))
                .values(deleted_at=None)
            )
        dropped = sorted({eid for _, _, eid, _ in old if eid is not None} - now_ids)
        if dropped:
            retire(self.conn, entity, dropped, self.ts)

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
            for e, i in _select_in(
                self.conn, lambda part: select(su.email, su.id).where(su.email.in_(part)), want
            ):
                self._staff[e] = i
        return self._staff
