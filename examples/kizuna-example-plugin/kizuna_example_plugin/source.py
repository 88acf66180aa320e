"""``type: example_jsonl``: people from a JSON-lines file, read from where the last sync ended.

A source type is a module with ``Config`` (extending Kizuna's ``SourceConfig``), ``streams``
and, optionally, ``TEMPLATE`` (the commented example ``kizuna init`` writes) and ``discover``
(what ``kizuna sources discover`` shows: each field found and where it goes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from connectors.page import Cursor, Page, RawBad
from flows.engine import StreamSpec
from flows.sources.registry import StreamFields
from flows.workspace import SourceConfig, Workspace
from kizuna.errors import BadRecord
from mappings.spreadsheet.headers import HeaderUse
from warehouse import records as r

FIELDS = {
    "id": "id",
    "name": "person.full_name",
    "email": "person.email",
    "company": "organization.name",
}
"""What ``map_row`` takes from each line; any other field is not stored."""

TEMPLATE = """\
# leads:
#   type: example_jsonl
#   path: data/leads.jsonl      # one {"id", "name", "email", "company"} object per line
"""


class Config(SourceConfig):
    type: Literal["example_jsonl"] = "example_jsonl"
    path: str = Field(min_length=1)
    """The JSON-lines file, relative to the workspace file."""
    page_size: int = Field(default=500, ge=1, le=10_000)


class Offset(Cursor):
    """Bytes of the file already stored; lines are only ever appended."""

    offset: int = 0


def read(path: Path, cursor: Offset | None, page_size: int) -> Iterator[Page[Offset]]:
    start = cursor.offset if cursor else 0
    with path.open("rb") as fh:
        fh.seek(start)
        records: list[dict[str, Any]] = []
        bad: list[RawBad] = []
        while line := fh.readline():
            if not line.endswith(b"\n"):
                break  # a line still being written: read it next time
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict) or "id" not in obj:
                    raise ValueError("not an object with an `id`")
                records.append(obj)
            except ValueError as exc:
                bad.append(
                    RawBad(
                        None, f"byte {fh.tell() - len(line)}: {exc}", line.decode(errors="replace")
                    )
                )
            if len(records) + len(bad) >= page_size:
                yield Page(records=records, cursor=Offset(offset=fh.tell()), bad=bad)
                records, bad = [], []
            start = fh.tell()
        yield Page(records=records, cursor=Offset(offset=start), bad=bad)


def map_row(raw: dict[str, Any]) -> list[r.Record]:
    email = str(raw.get("email") or "")
    if "@" not in email:
        raise BadRecord(f"email: {email!r} is not an address")
    company = raw.get("company")
    return [
        r.Person(
            source_id=str(raw["id"]),
            full_name=raw.get("name"),
            emails=[email],
            organization=r.OrgRef(name=company) if company else None,
            attributes={"plugin": "example"},
        )
    ]


def streams(name: str, cfg: Config, ws: Workspace) -> list[StreamSpec]:
    path = ws.resolve(cfg.path)

    def pages(cursor: Cursor | None) -> Iterator[Page[Any]]:
        return read(path, cursor if isinstance(cursor, Offset) else None, cfg.page_size)

    return [
        StreamSpec(
            connector=name,
            stream="people",
            read=pages,
            cursor_type=Offset,
            source_id=lambda raw: str(raw["id"]),
            map=map_row,
        )
    ]


def discover(name: str, cfg: Config, ws: Workspace) -> list[StreamFields]:
    """The fields of the file's first lines and what ``map_row`` does with each."""
    seen: dict[str, None] = {}
    with ws.resolve(cfg.path).open("rb") as fh:
        for _, line in zip(range(20), fh, strict=False):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                seen.update(dict.fromkeys(map(str, obj)))
    uses = [
        HeaderUse(f, FIELDS[f], "built-in") if f in FIELDS else HeaderUse(f, "ignore", "unmapped")
        for f in seen
    ]
    how = f"{Path(cfg.path).name}: the first lines' fields (this plugin maps a fixed set)"
    return [StreamFields(stream="people", how=how, uses=uses, columns_at="")]
