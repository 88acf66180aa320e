"""What ``kizuna sources discover`` shows for a Singer tap or a dlt source: each stream or
resource, whether a sync reads it, its fields named as the column map names them (dotted
paths, as ``mappings.spreadsheet.nested.flatten`` produces them) and where each one goes.

A tap's fields come from its catalog's JSON schema; a dlt resource's from its declared
columns and the first records it yields. Both are explained by the same rule the sync maps
with (``mappings.spreadsheet.headers.explain``), so what discover says is what a sync does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flows.sources.registry import StreamFields
from flows.sources.taps.records import MappedStream
from mappings.spreadsheet import headers, nested


def schema_fields(schema: Any) -> list[str]:
    """The dotted paths a record of this JSON schema flattens to (lists of objects as ``.0.``)."""
    out: list[str] = []

    def walk(prefix: str, node: Any, depth: int) -> None:
        if len(out) >= nested.MAX_COLUMNS or not isinstance(node, Mapping):
            return
        props = node.get("properties")
        items = node.get("items")
        if isinstance(props, Mapping) and props and depth < nested.MAX_DEPTH:
            for name, sub in props.items():
                walk(f"{prefix}.{name}" if prefix else str(name), sub, depth + 1)
        elif (
            isinstance(items, Mapping)
            and isinstance(items.get("properties"), Mapping)
            and depth < nested.MAX_DEPTH
        ):
            walk(f"{prefix}.0", items, depth + 1)
        elif prefix:
            out.append(prefix)

    walk("", schema, 0)
    return out


def record_fields(declared: Iterable[str], records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Declared columns first, then every flattened field the sample records carry, once."""
    seen: dict[str, None] = dict.fromkeys(declared)
    for record in records:
        seen.update(dict.fromkeys(nested.flatten(record)))
    return list(seen)


def _selected(meta: Any, breadcrumb: list[str]) -> bool | None:
    """A Singer metadata entry's ``selected`` (``inclusion: unsupported`` is never sent)."""
    for entry in meta if isinstance(meta, list) else []:
        if isinstance(entry, Mapping) and list(entry.get("breadcrumb") or []) == breadcrumb:
            m = entry.get("metadata") or {}
            if m.get("inclusion") == "unsupported":
                return False
            if m.get("inclusion") == "automatic":
                return True
            return m.get("selected") if isinstance(m.get("selected"), bool) else None
    return None


def catalog_selection(catalog: Mapping[str, Any]) -> dict[str, tuple[bool, list[str]]]:
    """Per stream of a catalog file: selected or not, and the top-level properties it leaves
    out (Singer metadata, or the legacy ``selected`` flag on the stream or its schema)."""
    out: dict[str, tuple[bool, list[str]]] = {}
    for entry in catalog.get("streams") or []:
        if not isinstance(entry, Mapping):
            continue
        sid = str(entry.get("tap_stream_id") or entry.get("stream") or "")
        meta, schema = entry.get("metadata"), entry.get("schema") or {}
        chosen = _selected(meta, [])
        if chosen is None:
            chosen = bool(entry.get("selected") or schema.get("selected"))
        props = schema.get("properties") or {} if isinstance(schema, Mapping) else {}
        left = [str(p) for p in props if _selected(meta, ["properties", str(p)]) is False]
        out[sid] = (chosen, left)
    return out


def explain(
    source: str,
    stream: str,
    group: str,
    fields: list[str],
    mapped: MappedStream | None,
    how: str,
) -> StreamFields:
    """One stream's fields explained with its ``columns:`` (built-in guesses if not read)."""
    columns = dict(mapped.columns) if mapped else {}
    uses = headers.explain(fields, columns)
    unknown = [
        c for c in columns if c not in fields and headers.fold(c) not in map(headers.fold, fields)
    ]
    if unknown and fields:
        how += f"; mapped but not found: {', '.join(unknown)}"
    return StreamFields(
        stream=stream, how=how, uses=uses, columns_at=f"sources.{source}.{group}.{stream}.columns"
    )
