"""Salesforce values both ways: datetimes as SOQL literals and as records carry them, quoted
string lists for ``IN (...)``, and REST JSON and Bulk CSV rows brought to one flat shape.

Pure functions with no client: the read and write sides and the tests of the mapping use them
alike, so both API paths hash and map identically.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """REST JSON → the Bulk CSV shape: nested relationships become ``Owner.Email`` keys."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if k == "attributes":
            continue
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def parse_csv_page(text: str) -> list[dict[str, Any]]:
    """Bulk CSV → dicts; empty cells are nulls and ``IsX``/``HasX`` cells booleans."""
    rows: list[dict[str, Any]] = []
    for row in csv.DictReader(io.StringIO(text)):
        out: dict[str, Any] = {}
        for k, v in row.items():
            if v == "":
                out[k] = None
            elif (k.startswith(("Is", "Has")) or ".Is" in k) and v in ("true", "false"):
                out[k] = v == "true"
            else:
                out[k] = v
        rows.append(out)
    return rows


def soql_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_sf_datetime(value: str) -> datetime:
    """Salesforce writes ``2026-01-02T03:04:05.000+0000``; Python wants a colon in the offset."""
    v = value.strip().replace("Z", "+00:00")
    if len(v) > 5 and v[-5] in "+-" and v[-3] != ":":
        v = f"{v[:-2]}:{v[-2:]}"
    dt = datetime.fromisoformat(v)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def soql_in(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)
