"""Writing the store back to a CRM: fields Kizuna computed or corrected, on the very records
they came from.

Records read from a CRM stream keep their source ids (lineage), so the unified rows they fed
can be written back: ``{source id: {CRM field: value}}`` for the unified columns an admin
chose (``writeback:`` in the source's config). The connector's write module plans against the
CRM's current state (update-only: Kizuna never creates CRM records from here), so only real
differences are written, a dry run shows them first, and a second push is a no-op.

```yaml
sources:
  sfdc:
    type: salesforce
    ...
    writeback:
      Contact:                  # the object (HubSpot: object type; kintone: the app's stream)
        entity: person
        columns: {title: Title, attributes.score: Kizuna_Score__c}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, select

from connectors.crm.write import WriteResult
from flows.sources import registry
from flows.workspace import Workspace
from kizuna.errors import ConfigError
from warehouse import schema as t


class WritebackTarget(BaseModel):
    """One CRM object (or kintone app) that receives unified columns."""

    model_config = ConfigDict(extra="forbid")

    entity: Literal["organization", "person", "deal"]
    columns: dict[str, str] = Field(min_length=1)
    """Unified column (or ``attributes.<key>``) → CRM field."""
    stream: str | None = None
    """The stream whose records are written (default: the one named like the target)."""


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


def push(
    ws: Workspace,
    source: str,
    engine: Engine,
    *,
    dry_run: bool = False,
    client: Any = None,
) -> list[WriteResult]:
    """Write every configured write-back target of ``source``; ``client`` for tests."""
    cfg = registry.source_config(ws, source)
    targets: dict[str, WritebackTarget] = getattr(cfg, "writeback", {}) or {}
    if not targets:
        raise ConfigError(
            "nothing to write back",
            file=str(ws.path),
            field=f"sources.{source}.writeback",
            fix="name the objects and the unified columns to write to them",
        )
    module = registry.module_of(cfg)
    out = []
    for name, target in targets.items():
        stream = target.stream or module.writeback_stream(name)
        with engine.connect() as conn:
            desired = desired_from_store(conn, source, stream, target.entity, target.columns)
        out.append(
            module.write_back(source, cfg, ws, name, desired, dry_run=dry_run, client=client)
        )
    return out
