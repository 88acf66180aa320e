"""``kizuna quarantine`` and ``kizuna export activities``: what was refused (the file to fix
and why) and what landed, as tables for people and JSON lines for scripts and audits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func, select

from flows import progress
from flows.cli.common import when_ago, zone_label
from flows.runtime import engine_for
from flows.workspace import Workspace
from warehouse import schema as t
from warehouse.identity.keys.normalize import display_email


def shown_path(ws: Workspace, path: str | None) -> str | None:
    """A stored file path as a person types it: relative to the workspace folder when inside."""
    if not path:
        return None
    p = Path(path)
    try:
        return p.relative_to(ws.root.resolve()).as_posix()
    except ValueError:
        try:
            return p.relative_to(ws.root).as_posix()
        except ValueError:
            return path


def quarantine_rows(
    ws: Workspace, *, source: str | None, limit: int | None
) -> tuple[int, Iterator[dict[str, Any]]]:
    """The number of open entries and the newest ``limit`` of them (all when None)."""
    engine = engine_for(ws.warehouse_url)
    q = t.Quarantine
    stmt = select(
        q.connector, q.stream, q.source_id, q.path, q.reason, q.payload, q.created_at
    ).where(q.resolved_at.is_(None))
    if source:
        stmt = stmt.where(q.connector == source)
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())
    ordered = stmt.order_by(q.id.desc())
    if limit is not None:
        ordered = ordered.limit(limit)

    def rows() -> Iterator[dict[str, Any]]:
        with engine.connect() as conn:
            for c, s, sid, path, reason, payload, when in conn.execute(ordered):
                yield {
                    "source": c,
                    "stream": s,
                    "path": shown_path(ws, path),
                    "source_id": sid,
                    "reason": reason,
                    "payload": payload,
                    "at": when.astimezone(UTC).isoformat() if when else None,
                }

    return total, rows()


def write_quarantine_json(out: TextIO, ws: Workspace, *, source: str | None, payload: bool) -> int:
    """Every open entry as one JSON object per line; returns how many were written."""
    _, rows = quarantine_rows(ws, source=source, limit=None)
    n = 0
    for row in rows:
        if not payload:
            row.pop("payload")
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        n += 1
    return n


def print_quarantine(
    console: Console, ws: Workspace, *, source: str | None, limit: int, payload: bool
) -> None:
    total, rows = quarantine_rows(ws, source=source, limit=limit)
    listed = list(rows)
    table = Table(
        title=f"Quarantined records — {total:,} open"
        + (f" from {escape(source)}" if source else "")
        + (f" (latest {len(listed)})" if total > len(listed) else ""),
        title_justify="left",
    )
    zone = ws.company.time_zone
    for col in ("source/stream", "file to fix", "reason", f"when ({zone_label(zone)})"):
        table.add_column(col, overflow="fold")
    if payload:
        table.add_column("record as it arrived", overflow="fold")
    for row in listed:
        where = row["path"] or row["source_id"] or "—"
        cells = [
            escape(f"{row['source']}/{row['stream']}"),
            escape(where),
            escape(row["reason"]),
            _when(row["at"], zone),
        ]
        if payload:
            cells.append(escape((row["payload"] or "")[:400]))
        table.add_row(*cells)
    console.print(table)
    if total:
        console.print(
            "Fix the file (or the record at its source) and sync again: an entry closes when "
            "its record lands. `kizuna quarantine --json` lists every entry for a script."
        )


def _when(at: str | None, zone: str) -> str:
    return when_ago(datetime.fromisoformat(at) if at is not None else None, zone)


def export_activities(
    out: TextIO, ws: Workspace, *, kind: str | None = None, where: Any = None
) -> int:
    """Every live activity as one JSON object per line (streamed, in id order): where it came
    from, what it is, who took part, when (UTC), its text and attachments. ``where`` is a
    viewer's scope condition (``warehouse.access.scope.activities``) for ``--as``."""
    engine = engine_for(ws.warehouse_url)
    a = t.table(t.Activity)
    ap = t.table(t.ActivityParticipant)
    sr = t.table(t.SourceRecord)
    n = 0
    last = 0
    live = a.c.deleted_at.is_(None) if not kind else (a.c.deleted_at.is_(None) & (a.c.kind == kind))
    if where is not None:
        live = live & where
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(a).where(live)).scalar_one())
    tick = progress.start("export → activities", total) or (lambda _n: None)
    while True:
        stmt = select(a).where(live, a.c.id > last)
        with engine.connect() as conn:
            acts = conn.execute(stmt.order_by(a.c.id).limit(_EXPORT_PAGE)).mappings().all()
            if not acts:
                return n
            ids = [x["id"] for x in acts]
            people: dict[int, list[dict[str, Any]]] = {}
            for row in conn.execute(
                select(ap.c.activity_id, ap.c.email, ap.c.name, ap.c.role)
                .where(ap.c.activity_id.in_(ids))
                .order_by(ap.c.activity_id, ap.c.role, ap.c.email)
            ):
                person = {"email": row.email, "name": row.name, "role": row.role}
                if row.email and display_email(row.email) != row.email:
                    person["shown"] = display_email(row.email)  # U-label of an IDN domain
                people.setdefault(row.activity_id, []).append(person)
            sources: dict[int, list[dict[str, Any]]] = {}
            for lin in conn.execute(
                select(sr.c.entity_id, sr.c.connector, sr.c.stream, sr.c.source_id, sr.c.locator)
                .where(sr.c.entity == "activity", sr.c.entity_id.in_(ids))
                .order_by(sr.c.entity_id, sr.c.connector, sr.c.source_id, sr.c.locator)
            ):
                src = {"source": lin.connector, "stream": lin.stream, "id": lin.source_id}
                if lin.locator:  # the file (mbox#offset) this copy was read from
                    src["path"] = shown_path(ws, lin.locator)
                sources.setdefault(lin.entity_id, []).append(src)
        for x in acts:
            attrs = dict(x["attributes"] or {})
            parts = people.get(x["id"], [])
            sender = next((p["email"] for p in parts if p["role"] in ("from", "organizer")), None)
            for src in sources.get(x["id"], []):
                if "path" not in src and attrs.get("path"):
                    src["path"] = shown_path(ws, str(attrs["path"]))
            record = {
                "key": x["key"],
                "kind": x["kind"],
                "timeline": bool(x["timeline"]),
                "subject": x["subject"],
                "from": sender,
                "participants": parts,
                "date": x["occurred_at"].astimezone(UTC).isoformat(),
                "ends": x["ends_at"].astimezone(UTC).isoformat() if x["ends_at"] else None,
                "status": x["status"],
                "text": x["body"] if x["body"] is not None else x["snippet"],
                "attachments": attrs.get("attachments", []),
                "sources": sources.get(x["id"], []),
                "attributes": attrs,
            }
            out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            n += 1
        tick(len(acts))
        last = ids[-1]


_EXPORT_PAGE = 1000
