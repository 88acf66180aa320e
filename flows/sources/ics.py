"""Source type ``ics``: calendar files (one ``.ics`` or a folder) → meeting activities.

The expansion window and "now": recurring meetings are expanded between a start and an end
date in the workspace's time zone, computed once when the stream is built (so one run sees one
window). To keep re-runs free and history intact:

- the **end** is ``today + expand_future_days`` rounded up to the next Monday, so it moves at
  most once a week; when it moves, recurring events are re-expanded (their raw record carries
  the window, so their payload hash changes) and new occurrences appear, while single events
  are skipped as unchanged;
- the **start** is ``today - expand_past_days`` rounded down to a Monday on the first sync and
  then kept in the cursor: it never moves forward, so an occurrence that has been stored is
  never retired just because time passed. Raising ``expand_past_days`` moves it back.

Within one week, a re-run over unchanged files writes nothing. The price of a fixed start:
a long-lived weekly series grows by ~52 stored occurrences a year; resetting the stream's
cursor re-anchors the start at ``today - expand_past_days``.

The start is the **history horizon**: occurrences of a series before it are not stored, and
each series cut there is told in the quarantine (as a note against its file, the event
itself lands) with the count and the setting that keeps them, so nothing older is lost
silently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from connectors.files.icsfiles import IcsCursor, events
from connectors.page import Cursor, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.sources.common import calendar_window, file_path, require_path, window_activities
from flows.storage import fetch_source, source_path
from flows.workspace import SourceConfig, Workspace
from mappings.calendar.events import MAX_OCCURRENCES
from warehouse import records as r

STREAM = "events"


class Config(SourceConfig):
    type: Literal["ics"] = "ics"
    path: str = Field(min_length=1)
    """A ``.ics`` file or a folder of them (searched recursively); relative to kizuna.yaml."""
    expand_past_days: int = Field(default=180, ge=0, le=3650)
    expand_future_days: int = Field(default=90, ge=0, le=3650)
    page_size: int = Field(default=200, ge=1, le=10_000)
    max_occurrences: int = Field(default=MAX_OCCURRENCES, ge=1, le=1_000_000)
    """Occurrences one recurring event may have in the window; a series with more is
    quarantined (it is almost always a mistake, such as an hourly rule with no end). Its rule
    may also step at most 10 periods per allowed occurrence from DTSTART to the window."""
    allow_sub_daily: bool = False
    """Expand ``FREQ=MINUTELY``/``SECONDLY`` rules instead of quarantining them."""


def window_for(cfg: Config, today: date, stored: Sequence[str] | None) -> list[str]:
    """``[start, end]`` as ISO dates: start kept from the cursor unless it must move back."""
    start = stored[0] if stored else None
    return list(calendar_window(today, cfg.expand_past_days, cfg.expand_future_days, start))


def streams(
    name: str, cfg: Config, ws: Workspace, *, now: datetime | None = None
) -> list[StreamSpec]:
    tz = ZoneInfo(ws.company.time_zone)
    today = (now or datetime.now(UTC)).astimezone(tz).date()
    root: Path = source_path(ws, cfg.path)  # a remote location's local mirror
    domains = list(ws.company.domains)
    default_window = window_for(cfg, today, None)

    def read(cursor: Cursor | None) -> Iterator[Page[IcsCursor]]:
        fetch_source(ws, cfg.path)  # a remote folder: what changed, copied
        require_path(
            root, ws, name, "calendar", "point it at an .ics file or a folder of .ics files"
        )
        c = cursor if isinstance(cursor, IcsCursor) else None
        window = window_for(cfg, today, c.window if c else None)
        return events(root, c, window=window, page_size=cfg.page_size)

    def map_event(raw: dict[str, Any]) -> list[r.Record]:
        notes: list[r.CellIssue] = []
        acts = window_activities(
            raw["ics"],
            raw.get("window") or default_window,
            own_domains=domains,
            tz=tz,
            max_occurrences=cfg.max_occurrences,
            allow_sub_daily=cfg.allow_sub_daily,
            notes=notes,
        )
        where = file_path(root, str(raw.get("file") or ""))
        return [*acts, *(n.model_copy(update={"locator": where}) for n in notes)]

    return [
        StreamSpec(
            connector=name,
            stream=STREAM,
            read=read,
            cursor_type=IcsCursor,
            source_id=lambda raw: str(raw["uid"]),
            map=map_event,
            fingerprint=config_fingerprint(
                {
                    "mapping": 2,
                    "domains": domains,
                    "tz": ws.company.time_zone,
                    "max_occurrences": cfg.max_occurrences,
                    "sub_daily": cfg.allow_sub_daily,
                }
            ),
            path_of=lambda raw: file_path(root, str(raw.get("file") or "")),
        )
    ]
