"""Source type ``gcal``: Google Calendar, one stream per account's calendar.

```yaml
sources:
  gcal:
    type: gcal
    accounts: [sato@ourco.co.jp]
    service_account_key_env: GOOGLE_SA_KEY
    calendar_id: primary
    past_days: 365            # how far back the first (full) sync reaches
```
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from connectors.calendar.gcal import GcalCursor, GcalOptions, events
from connectors.google_api import CALENDAR_READONLY
from connectors.page import Cursor, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.sources.google_common import (
    GoogleAccountsConfig,
    default_service,
    fit_stream_name,
    reauth_hint,
)
from flows.workspace import Workspace
from mappings.calendar.gcal import event_activity
from warehouse import records as r


class Config(GoogleAccountsConfig):
    type: Literal["gcal"] = "gcal"
    calendar_id: str = "primary"
    past_days: int = Field(default=365, ge=0, le=3650)
    page_size: int = Field(default=250, ge=1, le=2500)


def streams(
    name: str,
    cfg: Config,
    ws: Workspace,
    *,
    service_for: Callable[[str], Any] | None = None,
    options: dict[str, Any] | None = None,
    now: Callable[[], datetime] | None = None,
) -> list[StreamSpec]:
    """One stream per account; ``service_for``/``options``/``now`` are test seams."""
    make = service_for or default_service(cfg, ws, name, "calendar", "v3", [CALENDAR_READONLY])
    domains = list(ws.company.domains)
    tz = ws.company.time_zone

    def spec(account: str) -> StreamSpec:
        def read(cursor: Cursor | None) -> Iterator[Page[GcalCursor]]:
            opts = GcalOptions(
                account=account,
                calendar_id=cfg.calendar_id,
                past_days=cfg.past_days,
                page_size=cfg.page_size,
                fix=reauth_hint(cfg, account),
                **(options or {}),
            )
            c = cursor if isinstance(cursor, GcalCursor) else None
            return events(make(account), c, opts, now=now() if now else None)

        def map_event(raw: dict[str, Any]) -> list[r.Record]:
            return [event_activity(raw, own_domains=domains, default_tz=tz)]

        return StreamSpec(
            connector=name,
            stream=fit_stream_name(f"{account}/{cfg.calendar_id}"),
            read=read,
            cursor_type=GcalCursor,
            source_id=lambda raw: str(raw["id"]),
            map=map_event,
            fingerprint=config_fingerprint({"mapping": 1, "domains": domains, "tz": tz}),
        )

    return [spec(a) for a in cfg.accounts]
