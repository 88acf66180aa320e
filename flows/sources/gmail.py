"""Source type ``gmail``: Google Workspace / Gmail mailboxes, one stream per account.

```yaml
sources:
  gmail:
    type: gmail
    accounts: [sato@ourco.co.jp, suzuki@ourco.co.jp]
    service_account_key_env: GOOGLE_SA_KEY      # domain-wide delegation, or per account:
    # oauth_token_env: {sato@ourco.co.jp: GMAIL_TOKEN_SATO}
    query: newer_than:2y                         # limits the first (full) sync
    privacy:                                     # see mappings/mail/privacy.py
      capture: external                          # all | external | known_customers
      headers_only: false                        # true: format=metadata, bodies never fetched
      retention_days: 730
```
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from connectors.google_api import GMAIL_METADATA, GMAIL_READONLY
from connectors.mail.gmail import GmailCursor, GmailOptions, messages
from connectors.page import Cursor, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.sources.google_common import (
    GoogleAccountsConfig,
    default_service,
    fit_stream_name,
    reauth_hint,
)
from flows.sources.mail_privacy import privacy_filter
from flows.workspace import Workspace
from mappings.mail.gmail import message_records
from mappings.mail.privacy import PrivacyConfig
from warehouse import records as r


class Config(GoogleAccountsConfig):
    type: Literal["gmail"] = "gmail"
    query: str = ""
    page_size: int = Field(default=100, ge=1, le=500)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)


ServiceFor = Callable[[str], Any]


def streams(
    name: str,
    cfg: Config,
    ws: Workspace,
    *,
    service_for: ServiceFor | None = None,
    options: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> list[StreamSpec]:
    """One stream per account; ``service_for``/``options`` are test seams (transport, sleep)."""
    headers_only = cfg.privacy.headers_only
    # The metadata scope cannot read bodies at all: headers-only is enforced by Google too.
    scopes = [GMAIL_METADATA if headers_only else GMAIL_READONLY]
    make = service_for or default_service(cfg, ws, name, "gmail", "v1", scopes)
    domains = list(ws.company.domains)
    now = now or datetime.now(UTC)
    keep = privacy_filter(cfg.privacy, ws, now=now)
    query = cfg.query
    if cfg.privacy.retention_days:
        since = (now - timedelta(days=cfg.privacy.retention_days)).strftime("%Y/%m/%d")
        query = f"{query} after:{since}".strip()
    fingerprint = config_fingerprint(
        {
            "mapping": 2,
            "domains": domains,
            "zone": ws.company.time_zone,
            "privacy": cfg.privacy.model_dump(mode="json"),
        }
    )

    def spec(account: str) -> StreamSpec:
        def read(cursor: Cursor | None) -> Iterator[Page[GmailCursor]]:
            opts = GmailOptions(
                account=account,
                headers_only=headers_only,
                query=query,
                page_size=cfg.page_size,
                fix=reauth_hint(cfg, account),
                **(options or {}),
            )
            c = cursor if isinstance(cursor, GmailCursor) else None
            return messages(make(account), c, opts)

        def map_message(raw: dict[str, Any]) -> list[r.Record]:
            acts = message_records(
                raw, own_domains=domains, headers_only=headers_only, zone=ws.company.time_zone
            )
            first = keep(acts[0])
            if first is None:
                return []  # the message is out of scope, and so is what it carries
            return [first, *(kept for a in acts[1:] if (kept := keep(a)) is not None)]

        return StreamSpec(
            connector=name,
            stream=fit_stream_name(account),
            read=read,
            cursor_type=GmailCursor,
            source_id=lambda raw: str(raw["id"]),
            map=map_message,
            fingerprint=fingerprint,
        )

    return [spec(a) for a in cfg.accounts]
