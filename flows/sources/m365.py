"""Source type ``m365``: a Microsoft 365 tenant's mailboxes and calendars through Graph.

```yaml
sources:
  m365:
    type: m365
    tenant_id: 00000000-0000-0000-0000-000000000000
    client_id: 11111111-1111-1111-1111-111111111111
    client_secret_env: M365_CLIENT_SECRET
    mailboxes: [sato@ourco.co.jp, suzuki@ourco.co.jp]
    folders: [inbox, sentitems]      # well-known names or folder ids
    calendar: true
    privacy:                         # see mappings/mail/privacy.py (mail only)
      capture: external
      headers_only: false            # true: bodyPreview is not even requested
```

Streams: ``<mailbox>/mail/<folder>`` per folder (Graph delta is per folder) and
``<mailbox>/calendar``; each fails alone, so a mailbox the app may not read does not stop the
rest. One token per app registration per process is shared by all of them.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator

from connectors.mail.graph import DeltaCursor, GraphAuth, GraphClient, GraphOptions, TokenSource
from connectors.mail.graph import events as graph_events
from connectors.mail.graph import messages as graph_messages
from connectors.page import Cursor, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.secrets import block_name, resolve_secret
from flows.sources.common import unique_addresses
from flows.sources.google_common import fit_stream_name
from flows.sources.mail_privacy import privacy_filter
from flows.workspace import SourceConfig, Workspace
from mappings.mail.graph import event_activity, message_activity
from mappings.mail.privacy import PrivacyConfig
from warehouse import records as r


class Config(SourceConfig):
    type: Literal["m365"] = "m365"
    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret_env: str = Field(min_length=1)
    mailboxes: list[str] = Field(min_length=1)
    folders: list[str] = Field(default_factory=lambda: ["inbox", "sentitems"])
    mail: bool = True
    calendar: bool = True
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    calendar_past_days: int = Field(default=90, ge=0, le=3650)
    calendar_future_days: int = Field(default=180, ge=1, le=3650)
    page_size: int = Field(default=100, ge=1, le=1000)
    timeout_seconds: float = Field(default=60.0, gt=0)

    @field_validator("mailboxes")
    @classmethod
    def _mailboxes(cls, v: list[str]) -> list[str]:
        return unique_addresses(v, "a mailbox address")


_tokens: dict[tuple[str, str, str], TokenSource] = {}
_tokens_lock = threading.Lock()


def token_source(auth: GraphAuth) -> TokenSource:
    """The process-wide token source of an app registration (keyed without the secret)."""
    digest = hashlib.blake2b(
        auth.client_secret.get_secret_value().encode(), digest_size=8
    ).hexdigest()
    key = (auth.tenant_id, auth.client_id, digest)
    with _tokens_lock:
        src = _tokens.get(key)
        if src is None:
            src = _tokens[key] = TokenSource(auth)
        return src


ClientFactory = Callable[[], httpx.Client]


def streams(
    name: str,
    cfg: Config,
    ws: Workspace,
    *,
    client_factory: ClientFactory | None = None,
    options: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> list[StreamSpec]:
    """Streams per mailbox; ``client_factory``/``options`` are test seams (transport, sleep)."""
    domains = list(ws.company.domains)
    headers_only = cfg.privacy.headers_only
    keep = privacy_filter(cfg.privacy, ws, now=now or datetime.now(UTC))
    tz = ws.company.time_zone
    hint = (
        f"The secret is read from {cfg.client_secret_env} "
        f"(env var or Prefect Secret block {block_name(cfg.client_secret_env)!r})."
    )

    def make_client() -> httpx.Client:
        if client_factory is not None:
            return client_factory()
        return httpx.Client(timeout=cfg.timeout_seconds)

    def graph(client: httpx.Client, mailbox: str) -> GraphClient:
        secret = resolve_secret(
            cfg.client_secret_env, file=str(ws.path), field=f"sources.{name}.client_secret_env"
        )
        auth = GraphAuth(
            tenant_id=cfg.tenant_id,
            client_id=cfg.client_id,
            client_secret=secret,
            reauth_hint=hint,
        )
        opts = GraphOptions(mailbox=mailbox, page_size=cfg.page_size, **(options or {}))
        return GraphClient(client, token_source(auth), opts)

    def mail_spec(mailbox: str, folder: str) -> StreamSpec:
        def read(cursor: Cursor | None) -> Iterator[Page[DeltaCursor]]:
            c = cursor if isinstance(cursor, DeltaCursor) else None
            with make_client() as client:
                yield from graph_messages(
                    graph(client, mailbox), c, folder=folder, headers_only=headers_only
                )

        def map_message(raw: dict[str, Any]) -> list[r.Record]:
            act = keep(message_activity(raw, own_domains=domains, headers_only=headers_only))
            return [act] if act is not None else []

        return StreamSpec(
            connector=name,
            stream=fit_stream_name(f"{mailbox}/mail/{folder}"),
            read=read,
            cursor_type=DeltaCursor,
            source_id=lambda raw: str(raw["id"]),
            map=map_message,
            fingerprint=config_fingerprint(
                {"mapping": 1, "domains": domains, "privacy": cfg.privacy.model_dump(mode="json")}
            ),
        )

    def calendar_spec(mailbox: str) -> StreamSpec:
        def read(cursor: Cursor | None) -> Iterator[Page[DeltaCursor]]:
            c = cursor if isinstance(cursor, DeltaCursor) else None
            with make_client() as client:
                yield from graph_events(
                    graph(client, mailbox),
                    c,
                    past_days=cfg.calendar_past_days,
                    future_days=cfg.calendar_future_days,
                )

        def map_event(raw: dict[str, Any]) -> list[r.Record]:
            return [event_activity(raw, own_domains=domains, default_tz=tz)]

        return StreamSpec(
            connector=name,
            stream=fit_stream_name(f"{mailbox}/calendar"),
            read=read,
            cursor_type=DeltaCursor,
            source_id=lambda raw: str(raw["id"]),
            map=map_event,
            fingerprint=config_fingerprint({"mapping": 1, "domains": domains, "tz": tz}),
        )

    out: list[StreamSpec] = []
    for mailbox in cfg.mailboxes:
        if cfg.mail:
            out.extend(mail_spec(mailbox, f) for f in cfg.folders)
        if cfg.calendar:
            out.append(calendar_spec(mailbox))
    return out
