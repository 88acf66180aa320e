"""What the store says a CRM's records should hold: the input of a write-back.

Records read from a CRM stream keep their source ids (lineage), so the unified rows they fed
can be written back to the very records they came from: ``{source id: {CRM field: value}}``
for the unified columns an admin chose to write back (a computed score, a corrected title).
The connector's write module then plans against the CRM's current state, so only real
differences are written and a second write-back is a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from kizuna.errors import ConfigError
from warehouse import schema as t

TABLES: dict[str, Any] = {
    "organization": t.Organization,
    "person": t.Person,
    "deal": t.Deal,
}


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v.normalize(), "f") if v == v.to_integral() else str(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def desired_from_store(
    conn: Connection, connector: str, stream: str, entity: str, columns: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """``columns``: unified column (or ``attributes.x``) → CRM field to write it to."""
    model = TABLES.get(entity)
    if model is None:
        raise ConfigError(f"cannot write back {entity!r}", fix=f"use one of {sorted(TABLES)}")
    plain = {c: f for c, f in columns.items() if not c.startswith("attributes.")}
    for c in plain:
        if not hasattr(model, c):
            raise ConfigError(f"{entity} has no column {c!r}", field="columns")
    sr = t.SourceRecord
    cols = [getattr(model, c) for c in plain]
    stmt = (
        select(sr.source_id, model.attributes, *cols)
        .join(model, model.id == sr.entity_id)
        .where(
            sr.connector == connector,
            sr.stream == stream,
            sr.entity == entity,
            sr.deleted_at.is_(None),
            model.deleted_at.is_(None),
        )
        .order_by(sr.source_id)
    )
    out: dict[str, dict[str, Any]] = {}
    for row in conn.execute(stmt):
        sid, attrs, *vals = row
        fields = {f: _plain(v) for f, v in zip(plain.values(), vals, strict=True)}
        for c, f in columns.items():
            if c.startswith("attributes."):
                fields[f] = _plain((attrs or {}).get(c.removeprefix("attributes.")))
        out[str(sid)] = fields
    return out
