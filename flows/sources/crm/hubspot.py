"""``type: hubspot`` sources: one stream per CRM object type (companies, contacts, deals, …).

```yaml
sources:
  hubspot:
    type: hubspot
    token_env: HUBSPOT_TOKEN        # a private app's access token
    objects:
      contacts: {field_map: {family_name_kana: lastname_kana, attributes.score: hubspotscore}}
      deals: {}
      meetings: {}
```
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.crm import hubspot as hs
from connectors.crm import hubspot_write
from connectors.crm import quota as crm_quota
from connectors.crm.write import WriteResult
from connectors.page import Cursor, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.secrets import require_tls, resolve_secret
from flows.sources.crm.common import LazyClient, apply_mapper, map_options
from flows.sources.crm.writeback import WritebackTarget
from flows.workspace import SourceConfig, Workspace
from kizuna.errors import ConfigError, KizunaError
from mappings.crm import hubspot as m

DEFAULT_OBJECTS = ("companies", "contacts", "deals", "meetings", "calls")


class ObjectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    properties: list[str] = Field(default_factory=list)
    field_map: dict[str, str] = Field(default_factory=dict)
    archived: bool = True


class Config(SourceConfig):
    type: Literal["hubspot"] = "hubspot"
    token_env: str
    base_url: str = "https://api.hubapi.com"
    objects: dict[str, ObjectConfig] = Field(
        default_factory=lambda: {o: ObjectConfig() for o in DEFAULT_OBJECTS}
    )
    searches_per_second: float = Field(default=hs.SEARCHES_PER_SECOND, gt=0)
    """HubSpot's search limit per account (5 per second); lower it to leave room for others."""
    requests_per_10s: int = Field(default=hs.REQUESTS_PER_10S, ge=1)
    """The private app's limit per ten seconds: 100 (Free, Starter), 190 (Professional,
    Enterprise), 250 with the API limit increase."""
    page_size: int = Field(default=200, ge=1, le=200)
    writeback: dict[str, WritebackTarget] = Field(default_factory=dict)
    """Object type → unified columns written back to it (see ``flows.sources.crm.writeback``)."""
    currency: str = Field(default="JPY", min_length=3, max_length=3)

    @field_validator("base_url")
    @classmethod
    def _tls(cls, v: str) -> str:
        return require_tls(v)


def streams(
    name: str, cfg: Config, ws: Workspace, *, client: httpx.Client | None = None
) -> list[StreamSpec]:
    for obj in cfg.objects:
        if obj not in m.MAPPERS:
            raise ConfigError(
                f"unknown HubSpot object {obj!r}",
                file=str(ws.path),
                field=f"sources.{name}.objects",
                fix=f"use some of: {', '.join(m.MAPPERS)}",
            )
    api = LazyClient(partial(_api, name, cfg, ws, client))
    opts = map_options(name, ws, cfg.currency, {o: oc.field_map for o, oc in cfg.objects.items()})
    out = []
    for obj, oc in cfg.objects.items():
        props = list(oc.properties) or list(hs.DEFAULT_PROPERTIES.get(obj, []))
        props += [s for s in oc.field_map.values() if s not in props]
        out.append(
            StreamSpec(
                connector=name,
                stream=obj,
                read=partial(_read, api, obj, props, oc.archived, cfg.page_size),
                cursor_type=hs.HubSpotCursor,
                source_id=_source_id,
                map=partial(apply_mapper, m.MAPPERS[obj], opts),
                fingerprint=config_fingerprint({"map": oc.field_map, "cur": cfg.currency}),
            )
        )
    return out


def _api(name: str, cfg: Config, ws: Workspace, client: httpx.Client | None) -> hs.HubSpot:
    c = client
    if c is None:
        token = resolve_secret(cfg.token_env, file=str(ws.path), field=f"sources.{name}.token_env")
        c = httpx.Client(
            base_url=cfg.base_url,
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            timeout=60,
        )
    search, every = hs.account_pace(
        f"{cfg.base_url}|{cfg.token_env}", cfg.searches_per_second, cfg.requests_per_10s
    )
    return hs.HubSpot(c, search_budget=search, budget=every)


def quota(name: str, cfg: Config, ws: Workspace, *, client: httpx.Client | None = None) -> str:
    """``kizuna check``: every configured object readable, and the quota HubSpot reports."""
    readable, quotas = crm_quota.hubspot(_api(name, cfg, ws, client), cfg.objects)
    for q in quotas:
        if q.remaining == 0 and q.per == "day":
            raise KizunaError(
                f"HubSpot daily API limit spent ({q.limit:,} requests). Fix: wait until "
                "midnight in the HubSpot account's time zone, or raise the limit"
            )
    left = "; ".join(q.text() for q in quotas) or "quota not reported (OAuth tokens get none)"
    return f"{', '.join(readable)} readable; {left}"


def writeback_stream(target: str) -> str:
    return target


def write_back(
    name: str,
    cfg: Config,
    ws: Workspace,
    target: str,
    desired: dict[str, dict[str, Any]],
    *,
    dry_run: bool = False,
    client: httpx.Client | None = None,
) -> WriteResult:
    """Update the records (by HubSpot id) a stream read; never creates or archives."""
    api = _api(name, cfg, ws, client)
    return hubspot_write.sync(api, target, "hs_object_id", desired, "update_only", dry_run=dry_run)


def _source_id(raw: dict[str, Any]) -> str:
    return str(raw.get("id") or "")


def _read(
    api: Any, obj: str, props: list[str], archived: bool, limit: int, cursor: Cursor | None
) -> Iterator[Page[Any]]:
    assert cursor is None or isinstance(cursor, hs.HubSpotCursor)
    return hs.read_objects(api(), obj, cursor, properties=props, archived=archived, limit=limit)
