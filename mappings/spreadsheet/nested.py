"""A nested record (JSON from a tap or an API) → flat ``dotted.path`` columns, so the same
column map that maps a spreadsheet maps it (``columns: {contact.email: person.email}``).

Lists of scalars become one comma-separated cell (the email and phone parsers split them);
lists of objects are indexed (``phones.0.number``). Bounded: nesting past ``MAX_DEPTH`` is
kept as its JSON text and at most ``MAX_COLUMNS`` columns are produced, so a hostile record
cannot make unbounded work.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 8
MAX_COLUMNS = 500


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def flatten(record: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any, depth: int) -> None:
        if len(out) >= MAX_COLUMNS:
            return
        if isinstance(value, Mapping) and depth < MAX_DEPTH:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v, depth + 1)
        elif isinstance(value, list) and depth < MAX_DEPTH:
            if all(not isinstance(v, Mapping | list) for v in value):
                out[prefix] = ", ".join(_cell(v) for v in value if v is not None)
            else:
                for i, v in enumerate(value):
                    walk(f"{prefix}.{i}", v, depth + 1)
        else:
            out[prefix] = _cell(value)

    walk("", record, 0)
    return out
