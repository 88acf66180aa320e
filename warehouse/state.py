"""Sync bookkeeping: cursors, run records and quarantine.

Cursors are stored as JSON values and always written inside the transaction that writes the
rows they cover, so the store and its cursor can never disagree after a crash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from warehouse import schema as t
from warehouse.records import safe_text
from warehouse.write.upsert import upsert


@dataclass(frozen=True)
class StreamKey:
    connector: str
    stream: str


@dataclass(frozen=True)
class Quarantined:
    """A bad record as it arrived, with the reason it could not be used."""

    source_id: str | None
    reason: str
    payload: str | None = None
    path: str | None = None
    """Where a person fixes it: the file (and row or offset) it came from, when there is one."""

    def row_key(self) -> str:
        """The entry's identity within its stream: the record's id and content, so the same
        bad record read again updates its entry instead of adding one."""
        h = hashlib.blake2b(digest_size=16)
        for part in (self.source_id, self.payload if self.payload is not None else self.reason):
            h.update((part or "").encode("utf-8", "surrogatepass") + b"\x00")
        return h.hexdigest()


def now() -> datetime:
    return datetime.now(UTC)


def load_cursor(conn: Connection, key: StreamKey) -> dict[str, Any] | None:
    row = conn.execute(
        select(t.SyncState.cursor).where(
            t.SyncState.connector == key.connector, t.SyncState.stream == key.stream
        )
    ).first()
    return None if row is None else row[0]


def save_cursor(
    conn: Connection, key: StreamKey, cursor: dict[str, Any] | None, run_id: str | None
) -> None:
    values = {
        "connector": key.connector,
        "stream": key.stream,
        "cursor": cursor,
        "updated_at": now(),
        "last_run_id": run_id,
    }
    upsert(conn, t.table(t.SyncState), [values], ["connector", "stream"])


def reset_cursor(conn: Connection, key: StreamKey) -> None:
    conn.execute(
        update(t.SyncState)
        .where(t.SyncState.connector == key.connector, t.SyncState.stream == key.stream)
        .values(cursor=None, updated_at=now())
    )


def check_fingerprint(conn: Connection, key: StreamKey, fingerprint: str) -> bool:
    """Record the mapping a stream is synced with; True when it changed since the last sync.

    A change clears the cursor in the same transaction, so the stream is read again from the
    start and every row is mapped anew (its payload hash includes the fingerprint). A stream
    without a recorded fingerprint (a warehouse from before fingerprints) adopts the current
    one without a re-read.
    """
    st = t.SyncState
    row = conn.execute(
        select(st.fingerprint).where(st.connector == key.connector, st.stream == key.stream)
    ).first()
    if row is None:
        conn.execute(
            insert(st).values(
                connector=key.connector,
                stream=key.stream,
                updated_at=now(),
                cursor=None,
                fingerprint=fingerprint,
            )
        )
        return False
    if row[0] == fingerprint:
        return False
    changed = row[0] is not None
    values: dict[str, Any] = {"fingerprint": fingerprint, "updated_at": now()}
    if changed:
        values["cursor"] = None
    conn.execute(
        update(st).where(st.connector == key.connector, st.stream == key.stream).values(values)
    )
    return changed


def reset_stream(conn: Connection, key: StreamKey) -> int:
    """Read a stream from scratch next time and re-apply every row, even unchanged ones.

    Only the cursor and the stored payload hashes are forgotten: the unified rows, their
    lineage, identity decisions and consent stay, and the re-read updates them in place.
    Returns how many lineage rows will be re-applied.
    """
    reset_cursor(conn, key)
    sr = t.SourceRecord
    res = conn.execute(
        update(sr)
        .where(sr.connector == key.connector, sr.stream == key.stream)
        .values(payload_hash="")
    )
    return int(res.rowcount or 0)


def quarantine(
    conn: Connection, key: StreamKey, items: Sequence[Quarantined], run_id: str | None
) -> int:
    """Keep bad records with their reasons, one open entry per bad record however often it
    is re-read: an entry is keyed by (stream, record id and content), so reading the same
    record again updates its entry, and a newer failure of the same id closes the older one.
    Every text is made valid Unicode first (a Message-ID of raw 8-bit bytes must not make
    the quarantine itself fail)."""
    if not items:
        return 0
    ts = now()
    rows: dict[str, dict[str, Any]] = {}
    for q in items:
        rows[q.row_key()] = {
            "connector": key.connector,
            "stream": key.stream,
            "row_key": q.row_key(),
            "source_id": safe_text(q.source_id)[:500] if q.source_id else None,
            "path": safe_text(q.path)[:1000] if q.path else None,
            "reason": safe_text(q.reason)[:2000],
            "payload": safe_text(q.payload) if q.payload is not None else None,
            "run_id": run_id,
            "created_at": ts,
            "resolved_at": None,
        }
    resolve_quarantined(conn, key, [r["source_id"] for r in rows.values() if r["source_id"]], ts)
    upsert(conn, t.table(t.Quarantine), list(rows.values()), ["connector", "stream", "row_key"])
    return len(items)


def resolve_quarantined(
    conn: Connection, key: StreamKey, source_ids: Sequence[str], ts: datetime | None = None
) -> None:
    """Close open quarantine entries of records that have now landed (or failed anew)."""
    q = t.Quarantine
    ids = sorted(set(source_ids))
    for i in range(0, len(ids), 900):
        conn.execute(
            update(q)
            .where(
                q.connector == key.connector,
                q.stream == key.stream,
                q.source_id.in_(ids[i : i + 900]),
                q.resolved_at.is_(None),
            )
            .values(resolved_at=ts or now())
        )


def start_run(conn: Connection, key: StreamKey, run_id: str) -> int:
    result = conn.execute(
        insert(t.SyncRun).returning(t.SyncRun.id),
        {
            "run_id": run_id,
            "connector": key.connector,
            "stream": key.stream,
            "started_at": now(),
            "status": "running",
        },
    )
    return int(result.scalar_one())


def run_started(conn: Connection, run_row: int) -> datetime:
    """When a stream run started (read back, so it is the stored, UTC value)."""
    started: datetime = conn.execute(
        select(t.SyncRun.started_at).where(t.SyncRun.id == run_row)
    ).scalar_one()
    return started


def add_to_run(conn: Connection, run_row: int, counts: dict[str, int]) -> None:
    if not any(counts.values()):
        return
    stmt = update(t.SyncRun).where(t.SyncRun.id == run_row)
    conn.execute(
        stmt.values({getattr(t.SyncRun, k): getattr(t.SyncRun, k) + v for k, v in counts.items()})
    )


def finish_run(conn: Connection, run_row: int, status: str, error: str | None = None) -> None:
    conn.execute(
        update(t.SyncRun)
        .where(t.SyncRun.id == run_row)
        .values(status=status, finished_at=now(), error=error)
    )


def quarantine_counts(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        select(t.Quarantine.connector, t.Quarantine.stream, func.count())
        .where(t.Quarantine.resolved_at.is_(None))
        .group_by(t.Quarantine.connector, t.Quarantine.stream)
    )
    return {(c, s): int(n) for c, s, n in rows}


def dumps_payload(raw: Any) -> str:
    """Keep a bad record readable in quarantine whatever its type."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "backslashreplace")
    if isinstance(raw, str):
        return raw
    return json.dumps(raw, ensure_ascii=False, default=_readable)


def _readable(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)
