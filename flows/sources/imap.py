"""Source type ``imap``: one mailbox over IMAP, one stream per folder (INBOX, Sent, …).

```yaml
sources:
  sato-mail:
    type: imap
    host: imap.example.co.jp
    security: ssl            # ssl (993) | starttls (143) | none (plain, local servers only)
    username: sato@kizuna.example
    password_env: SATO_IMAP_PASSWORD
    folders: [INBOX, Sent]
    privacy:
      capture: external      # all | external | known_customers
      exclude_domains: [lawfirm.example]
      headers_only: false
      retention_days: 365
    max_recipients: 1000     # and max_text_chars, max_mime_depth, max_mime_parts: as for `mail`
```

The password is read from the named environment variable (or Prefect Secret block) only when
a connection is opened, as ``SecretStr``; it never appears in logs, errors or results.
"""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from connectors.mail.imap import ImapAccount, ImapCursor, open_client, raw_source_id, read_folder
from connectors.page import Cursor, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.secrets import require_tls_host, resolve_secret
from flows.sources.common import MailLimitFields
from flows.sources.mail_privacy import privacy_filter
from flows.workspace import SourceConfig, Workspace
from kizuna.errors import BadRecord
from mappings.mail.privacy import PrivacyConfig
from mappings.mail.records import parse_mail
from warehouse import records as r


class Config(SourceConfig, MailLimitFields):
    type: Literal["imap"] = "imap"
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str = Field(min_length=1)
    password_env: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of the environment variable (or Prefect Secret block) holding the password."""
    folders: list[str] = Field(default_factory=lambda: ["INBOX", "Sent"], min_length=1)
    ca_file: str | None = None
    """A CA bundle for a server with a private certificate (relative to kizuna.yaml)."""
    use_extensions: bool = True
    """Use CONDSTORE/QRESYNC when the server offers them; false forces the UID-diff path."""
    page_size: int = Field(default=200, ge=1, le=5000)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)

    @model_validator(mode="after")
    def _no_plaintext_over_a_network(self) -> Config:
        require_tls_host(self.host, self.security)
        return self


def account(name: str, cfg: Config, ws: Workspace) -> ImapAccount:
    """The account with its password resolved (raises ConfigError naming the variable)."""
    password = resolve_secret(
        cfg.password_env, file=str(ws.path), field=f"sources.{name}.password_env"
    )
    ctx = None
    if cfg.ca_file:
        ctx = ssl.create_default_context(cafile=str(ws.resolve(cfg.ca_file)))
    return ImapAccount(
        host=cfg.host,
        port=cfg.port,
        username=cfg.username,
        password=password,
        security=cfg.security,
        ssl_context=ctx,
    )


def streams(
    name: str, cfg: Config, ws: Workspace, *, now: datetime | None = None
) -> list[StreamSpec]:
    now = now or datetime.now(UTC)
    domains = list(ws.company.domains)
    keep = privacy_filter(cfg.privacy, ws, now=now)
    since = (
        (now - timedelta(days=cfg.privacy.retention_days)).date()
        if cfg.privacy.retention_days
        else None
    )
    label = f"{cfg.username}@{cfg.host}"

    def connect() -> imaplib.IMAP4:
        return open_client(account(name, cfg, ws))

    def reader(folder: str) -> Callable[[Cursor | None], Iterator[Page[ImapCursor]]]:
        def read(cursor: Cursor | None) -> Iterator[Page[ImapCursor]]:
            return read_folder(
                connect,
                folder,
                cursor if isinstance(cursor, ImapCursor) else None,
                page_size=cfg.page_size,
                headers_only=cfg.privacy.headers_only,
                use_extensions=cfg.use_extensions,
                since=since,
                label=label,
            )

        return read

    def map_message(raw: dict[str, Any]) -> list[r.Record]:
        try:
            acts = parse_mail(
                raw["message"],
                own_domains=domains,
                headers_only=bool(raw.get("headers_only")),
                limits=cfg.limits(),
                zone=ws.company.time_zone,
            )
        except BadRecord as exc:  # keyed by the folder's UID, so it closes when fixed/gone
            raise BadRecord(exc.reason) from None
        sid = raw_source_id(raw)
        flags = {"imap_flags": list(raw.get("flags") or [])}
        out: list[r.Record] = []
        for i, act in enumerate(acts):
            attrs = {**act.attributes, **flags} if i == 0 else act.attributes
            kept = keep(act.model_copy(update={"source_id": sid, "attributes": attrs}))
            if kept is None and i == 0:
                return []  # the message is out of scope, and so is what it carries
            if kept is not None:
                out.append(kept)
        return out

    fingerprint = config_fingerprint(
        {
            "mapping": 2,
            "domains": domains,
            "zone": ws.company.time_zone,
            "limits": cfg.limits().__dict__,
            "privacy": cfg.privacy.model_dump(mode="json"),
        }
    )
    return [
        StreamSpec(
            connector=name,
            stream=folder,
            read=reader(folder),
            cursor_type=ImapCursor,
            source_id=raw_source_id,
            map=map_message,
            fingerprint=fingerprint,
        )
        for folder in cfg.folders
    ]
