"""Source type ``caldav``: calendars on a CalDAV server, one stream per calendar.

```yaml
sources:
  team-calendar:
    type: caldav
    url: https://dav.example.co.jp/
    username: sato@kizuna.example
    password_env: SATO_CALDAV_PASSWORD
    calendars: [/sato/work/, 営業]   # a calendar URL/path, or its display name
    expand_past_days: 180
    expand_future_days: 90
```

Recurring meetings are expanded between a start and an end date (as for ``.ics`` files): the
end moves at most weekly, and when it moves the connector re-reads the calendar so new
occurrences appear; recurring events carry the window in their raw record, so only they are
re-mapped. Occurrences before the window's start (the history horizon) are not stored; each
series cut there is noted in the quarantine with its count. The password is resolved when a connection opens and never logged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from connectors.calendar.caldav_sync import CaldavCursor, read_calendar
from connectors.page import Cursor, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.secrets import require_tls, resolve_secret
from flows.sources.common import calendar_window, window_activities
from flows.workspace import SourceConfig, Workspace
from kizuna.errors import BadRecord
from mappings.calendar.events import MAX_OCCURRENCES
from warehouse import records as r


class Config(SourceConfig):
    type: Literal["caldav"] = "caldav"
    url: str = Field(min_length=1, pattern=r"^https?://")
    username: str = Field(min_length=1)
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of the environment variable (or Prefect Secret block) holding the password."""
    calendars: list[str] = Field(min_length=1)
    expand_past_days: int = Field(default=180, ge=0, le=3650)
    expand_future_days: int = Field(default=90, ge=0, le=3650)
    max_occurrences: int = Field(default=MAX_OCCURRENCES, ge=1, le=1_000_000)
    """Occurrences one recurring event may have in the window; a series with more is
    quarantined."""
    allow_sub_daily: bool = False
    """Expand ``FREQ=MINUTELY``/``SECONDLY`` rules instead of quarantining them."""
    use_sync: bool = True
    """Use RFC 6578 sync-collection; false forces the ctag/etag diff."""
    page_size: int = Field(default=100, ge=1, le=1000)

    @field_validator("url")
    @classmethod
    def _tls(cls, v: str) -> str:
        return require_tls(v)


def window_for(cfg: Config, today: date, stored: tuple[str, str] | None) -> tuple[str, str]:
    """Start on a Monday and never moving forward once stored; end rounded up to a Monday."""
    start = stored[0] if stored else None
    return calendar_window(today, cfg.expand_past_days, cfg.expand_future_days, start)


def open_calendar(name: str, cfg: Config, ws: Workspace, calendar: str) -> tuple[Any, Any]:
    """``(client, calendar)``; the caller closes the client."""
    from caldav.davclient import DAVClient

    password = (
        resolve_secret(cfg.password_env, file=str(ws.path), field=f"sources.{name}.password_env")
        if cfg.password_env
        else None
    )
    client: Any = DAVClient(
        url=cfg.url,
        username=cfg.username,
        password=password.get_secret_value() if password else None,
    )
    if calendar.startswith(("http://", "https://", "/")):
        return client, client.calendar(url=urljoin(cfg.url, calendar))
    from caldav.lib import error as dav_error

    from connectors.calendar.caldav_sync import classify

    try:
        return client, client.principal().calendar(name=calendar)
    except dav_error.DAVError as exc:
        client.close()
        raise classify(exc, f"{cfg.username} {calendar}") from None


def streams(
    name: str, cfg: Config, ws: Workspace, *, now: datetime | None = None
) -> list[StreamSpec]:
    tz = ZoneInfo(ws.company.time_zone)
    today = (now or datetime.now(UTC)).astimezone(tz).date()
    domains = list(ws.company.domains)
    default_window = window_for(cfg, today, None)

    def reader(calendar: str) -> Callable[[Cursor | None], Iterator[Page[CaldavCursor]]]:
        def read(cursor: Cursor | None) -> Iterator[Page[CaldavCursor]]:
            c = cursor if isinstance(cursor, CaldavCursor) else None
            window = window_for(cfg, today, c.window if c else None)
            client, cal = open_calendar(name, cfg, ws, calendar)
            try:
                yield from read_calendar(
                    cal,
                    c,
                    page_size=cfg.page_size,
                    window=window,
                    use_sync=cfg.use_sync,
                    label=f"{cfg.username} {calendar}",
                )
            finally:
                client.close()

        return read

    def map_resource(raw: dict[str, Any]) -> list[r.Record]:
        notes: list[r.CellIssue] = []
        try:
            acts = window_activities(
                raw["ics"],
                raw.get("window") or default_window,
                own_domains=domains,
                tz=tz,
                max_occurrences=cfg.max_occurrences,
                allow_sub_daily=cfg.allow_sub_daily,
                notes=notes,
            )
        except BadRecord as exc:
            # Keyed by the resource, as its meetings are, so landing it later closes the entry.
            raise BadRecord(exc.reason, source_id=str(raw["href"])) from None
        # The resource is the unit the server names in deletions; its meetings share it.
        href = {"source_id": raw["href"], "locator": raw["href"]}
        return [
            *(a.model_copy(update={"source_id": raw["href"]}) for a in acts),
            *(n.model_copy(update=href) for n in notes),
        ]

    fingerprint = config_fingerprint(
        {
            "mapping": 2,
            "domains": domains,
            "tz": ws.company.time_zone,
            "max_occurrences": cfg.max_occurrences,
            "sub_daily": cfg.allow_sub_daily,
        }
    )
    return [
        StreamSpec(
            connector=name,
            stream=calendar,
            read=reader(calendar),
            cursor_type=CaldavCursor,
            source_id=lambda raw: str(raw["href"]),
            map=map_resource,
            fingerprint=fingerprint,
            path_of=lambda raw: str(raw.get("href") or "") or None,
        )
        for calendar in cfg.calendars
    ]
