"""A deterministic in-memory source for engine, flow and crash tests (registered as ``fake``).

Generates ``rows`` people across organizations plus one email activity per person, in pages,
with an offset cursor — the shape every real connector has, without files or servers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from connectors.page import Cursor, Page
from flows.engine import StreamSpec
from flows.workspace import SourceConfig, Workspace
from kizuna.errors import BadRecord
from warehouse import records as r


class Config(SourceConfig):
    type: Literal["fake"] = "fake"
    rows: int = 100
    page_size: int = 25
    bad_every: int = 0
    """Every Nth row is malformed (quarantined), 0 for none."""
    version: int = 0
    """Bump to change every row's payload (a 'changed source')."""
    page_delay: float = 0.0
    """Seconds each page after the first takes to arrive (a slow API): streams that run at
    once then overlap in time however busy the machine is."""


class OffsetCursor(Cursor):
    offset: int = 0


def read(cfg: Config, cursor: OffsetCursor | None) -> Iterator[Page[OffsetCursor]]:
    start = cursor.offset if cursor else 0
    if start >= cfg.rows:
        yield Page(records=[], cursor=OffsetCursor(offset=start))
        return
    for lo in range(start, cfg.rows, cfg.page_size):
        if cfg.page_delay and lo > start:
            time.sleep(cfg.page_delay)
        hi = min(lo + cfg.page_size, cfg.rows)
        rows: list[dict[str, Any]] = []
        for i in range(lo, hi):
            bad = cfg.bad_every and i % cfg.bad_every == cfg.bad_every - 1
            rows.append(
                {
                    "id": f"P{i:06d}",
                    "name": f"顧客 {i}",
                    "email": "not-an-address" if bad else f"user{i}@org{i % 17}.co.jp",
                    "company": f"株式会社オーグ{i % 17}",
                    "v": cfg.version,
                }
            )
        yield Page(records=rows, cursor=OffsetCursor(offset=hi))


def map_row(raw: dict[str, Any]) -> list[r.Record]:
    if "@" not in raw["email"]:
        raise BadRecord(f"email: {raw['email']!r} is not an address")
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=int(raw["id"][1:]))
    return [
        r.Person(
            source_id=raw["id"],
            full_name=f"{raw['name']} v{raw['v']}",
            emails=[raw["email"]],
            organization=r.OrgRef(name=raw["company"]),
        ),
        r.Activity(
            source_id=raw["id"],
            key=f"mail:<{raw['id']}@fake>",
            kind="email",
            occurred_at=when,
            direction="inbound",
            subject=f"件名 {raw['id']}",
            participants=[
                r.Participant(email=raw["email"], role="from"),
                r.Participant(email="sales@kizuna-demo.co.jp", role="to", internal=True),
            ],
        ),
    ]


def streams(name: str, cfg: Config, ws: Workspace) -> list[StreamSpec]:
    return [
        StreamSpec(
            connector=name,
            stream="people",
            read=lambda cursor: read(cfg, cursor),  # type: ignore[arg-type]
            cursor_type=OffsetCursor,
            source_id=lambda raw: str(raw["id"]),
            map=map_row,
            total_hint=lambda: cfg.rows,
        )
    ]


def register() -> None:
    """Adds ``fake`` to the installed types, as if a test plugin declared it."""
    from flows.sources.registry import SourceType, source_types

    source_types()["fake"] = SourceType("fake", "tests.support.fakes.fakesource", "tests")
