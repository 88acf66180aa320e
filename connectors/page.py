"""The contract between a connector and the sync engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

C = TypeVar("C", bound="Cursor")


class Cursor(BaseModel):
    """Base of every connector cursor: an immutable, JSON-serialisable value."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class RawBad:
    """Something the connector read but could not even parse (undecodable bytes, broken row)."""

    source_id: str | None
    reason: str
    payload: str | None = None
    path: str | None = None
    """The file (and row or offset) a person opens to fix it."""


@dataclass(frozen=True)
class Page(Generic[C]):
    """A page of raw records and the cursor that is true once they are stored.

    - ``records``: raw dicts as the source gave them (mappings turn them into unified records);
    - ``deleted``: source ids the source says are gone (tombstones, ``@removed``, expunged);
    - ``bad``: items quarantined before mapping;
    - ``seen``: ids known to be present but not re-emitted (skipped as unchanged), so a
      snapshot pass does not mistake them for vanished;
    - ``snapshot_end``: this page ends a complete pass over the source: every live id of the
      stream not emitted or seen during the pass has vanished;
    - ``locators``: where each record sits (``file.csv:12``), parallel to ``records``, when
      the source is a file; kept with the lineage for the crosswalk.
    """

    records: list[dict[str, Any]]
    cursor: C
    deleted: list[str] = field(default_factory=list)
    bad: list[RawBad] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    snapshot_end: bool = False
    locators: list[str] = field(default_factory=list)


class Reader(Protocol[C]):
    """``reader(cursor) -> pages``; the cursor is None on a first or reset sync."""

    def __call__(self, cursor: C | None) -> Iterator[Page[C]]: ...
