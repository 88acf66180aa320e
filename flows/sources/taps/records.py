"""What Singer taps and dlt sources share: a per-stream column map over nested records, and
the key that names a record. One model and one rule, so both source types read the same way."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flows.sources.spreadsheet import Target
from kizuna.errors import BadRecord


class MappedStream(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: list[str] | None = None
    """Fields naming a record; by default the extractor's own hint (Singer ``key_properties``,
    dlt ``primary_key``)."""
    columns: dict[str, Target] = Field(default_factory=dict)
    """Dotted path into the record → unified field, as for spreadsheets."""


def record_key(group: str, record: dict[str, Any], fields: list[str], hint: str) -> str:
    """``group:value|value``; a record missing any key field is a ``BadRecord``."""
    if not fields or any(record.get(f) in (None, "") for f in fields):
        raise BadRecord(f"{group}: record without its key {fields or hint}")
    return f"{group}:" + "|".join(str(record[f]) for f in fields)
