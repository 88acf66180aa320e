"""The contract between a connector and the sync engine."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
      the source is a file; kept with the lineage for the crosswalk;
    - ``hashes``: the payload hash of each record, parallel to ``records``, when the connector
      hashed the record's raw bytes itself (None where it did not: the engine hashes those);
    - ``skipped``: records read but not emitted, because their bytes hashed to what the store
      already holds (see ``KnownHashes``): unchanged, and present in this pass.
    """

    records: list[dict[str, Any]]
    cursor: C
    deleted: list[str] = field(default_factory=list)
    bad: list[RawBad] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    snapshot_end: bool = False
    locators: list[str] = field(default_factory=list)
    hashes: list[str | None] = field(default_factory=list)
    skipped: int = 0


class KnownHashes(Protocol):
    """The payload hashes the store held for a stream when this pass began, for a connector
    that can hash a record before decoding it (the engine implements it).

    ``find`` gives, per 16-byte digest, the entry it matches when that stored row is live,
    consistent and not yet claimed in this pass, else -1; ``take`` claims the entries of the
    records the connector skipped (each at most once: a repeated line is emitted, so the
    engine sees the repeated id).
    """

    def find(self, digests: Sequence[bytes]) -> list[int]: ...

    def take(self, entries: Sequence[int]) -> None: ...


class Reader(Protocol[C]):
    """``reader(cursor) -> pages``; the cursor is None on a first or reset sync."""

    def __call__(self, cursor: C | None) -> Iterator[Page[C]]: ...
