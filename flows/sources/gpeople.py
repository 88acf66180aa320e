"""Source type ``gpeople``: Google contacts of each account as people.

```yaml
sources:
  contacts:
    type: gpeople
    accounts: [sato@ourco.co.jp]
    service_account_key_env: GOOGLE_SA_KEY
    other_contacts: true      # also the addresses Gmail collected ("other contacts")
```

Streams per account: ``<account>/contacts`` and ``<account>/other``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import Field

from connectors.calendar.gpeople import ListKind, PeopleCursor, PeopleOptions, people
from connectors.google_api import CONTACTS_READONLY, OTHER_CONTACTS_READONLY
from connectors.page import Cursor, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.sources.google_common import (
    GoogleAccountsConfig,
    default_service,
    fit_stream_name,
    reauth_hint,
)
from flows.workspace import Workspace
from mappings.calendar.gpeople import person_record
from warehouse import records as r


class Config(GoogleAccountsConfig):
    type: Literal["gpeople"] = "gpeople"
    other_contacts: bool = True
    page_size: int = Field(default=1000, ge=1, le=1000)


def streams(
    name: str,
    cfg: Config,
    ws: Workspace,
    *,
    service_for: Callable[[str], Any] | None = None,
    options: dict[str, Any] | None = None,
) -> list[StreamSpec]:
    scopes = [CONTACTS_READONLY] + ([OTHER_CONTACTS_READONLY] if cfg.other_contacts else [])
    make = service_for or default_service(cfg, ws, name, "people", "v1", scopes)
    domains = list(ws.company.domains)
    region = ws.company.phone_region

    def spec(account: str, kind: ListKind) -> StreamSpec:
        def read(cursor: Cursor | None) -> Iterator[Page[PeopleCursor]]:
            opts = PeopleOptions(
                account=account,
                page_size=cfg.page_size,
                fix=reauth_hint(cfg, account),
                **(options or {}),
            )
            c = cursor if isinstance(cursor, PeopleCursor) else None
            return people(make(account), c, opts, kind=kind)

        def map_person(raw: dict[str, Any]) -> list[r.Record]:
            return list(person_record(raw, own_domains=domains, phone_region=region))

        label = "contacts" if kind == "connections" else "other"
        return StreamSpec(
            connector=name,
            stream=fit_stream_name(f"{account}/{label}"),
            read=read,
            cursor_type=PeopleCursor,
            source_id=lambda raw: str(raw["resourceName"]),
            map=map_person,
            fingerprint=config_fingerprint({"mapping": 1, "domains": domains, "region": region}),
        )

    out: list[StreamSpec] = []
    for account in cfg.accounts:
        out.append(spec(account, "connections"))
        if cfg.other_contacts:
            out.append(spec(account, "other"))
    return out
