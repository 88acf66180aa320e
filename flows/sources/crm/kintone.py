"""``type: kintone`` sources: one stream per configured app, mapped by the admin.

```yaml
sources:
  kintone:
    type: kintone
    base_url: https://example.cybozu.com
    apps:
      customers:                    # the stream name
        app: 12
        token_env: KINTONE_CUSTOMERS_TOKEN
        entity: organization
        field_map: {name: 会社名, domain: ウェブサイト, corporate_number: 法人番号,
                    owner_email: 担当者, attributes.rank: ランク}
        user_domain: jisha.co.jp    # login names in user fields → addresses
      deals:
        app: 13
        token_env: KINTONE_DEALS_TOKEN
        entity: deal
        field_map: {name: 案件名, stage: ステータス, amount: 金額, organization: 会社名}
        won_stages: [受注]
        lost_stages: [失注]
        line_items:                 # the 明細 table → deal line items (quotes)
          table: 明細
          field_map: {product_code: 商品コード, quantity: 数量, unit_price: 単価}
      products:
        app: 14
        token_env: KINTONE_PRODUCTS_TOKEN
        entity: product
        field_map: {code: 商品コード, name: 商品名, unit_price: 単価, tax_rate: 税率}
        tax_included: false         # true when the app's prices are 税込
```
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from connectors.crm import kintone as kt
from connectors.crm import kintone_write
from connectors.crm import quota as crm_quota
from connectors.crm.write import WriteResult
from connectors.page import Cursor, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.secrets import resolve_secret
from flows.sources.crm.common import LazyClient, map_options
from flows.sources.crm.writeback import WritebackTarget
from flows.workspace import SourceConfig, Workspace
from kizuna.errors import ConfigError, KizunaError
from mappings.crm import kintone as m
from mappings.crm.common import MapOptions


class LineItems(BaseModel):
    """A deal app's 明細 table: its SUBTABLE field code and the codes of its columns."""

    model_config = ConfigDict(extra="forbid")

    table: str = Field(min_length=1)
    field_map: dict[str, str] = Field(min_length=1)
    """``product_code``, ``description``, ``quantity``, ``unit_price``, ``unit``, ``tax_rate``."""


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app: int = Field(ge=1)
    token_env: str
    entity: m.Entity
    field_map: dict[str, str]
    updated_field: str = "更新日時"
    where: str | None = None
    guest_space: int | None = None
    mode: Literal["seek", "cursor"] = "seek"
    sweep_deletes: bool = True
    lookback_minutes: int = Field(default=5, ge=0)
    page_size: int = Field(default=500, ge=1, le=500)
    user_domain: str | None = None
    activity_kind: Literal["email", "meeting", "call", "task", "note"] = "meeting"
    won_stages: list[str] = Field(default_factory=list)
    lost_stages: list[str] = Field(default_factory=list)
    line_items: LineItems | None = None
    """``entity: deal``: its 明細 table, read as the deal's line items (quotes)."""
    tax_included: bool = False
    """``entity: product`` / lines: the app's prices are 税込."""


class Config(SourceConfig):
    type: Literal["kintone"] = "kintone"
    base_url: str = Field(pattern=r"^https://")
    apps: dict[str, AppConfig]
    currency: str = Field(default="JPY", min_length=3, max_length=3)
    writeback: dict[str, WritebackTarget] = Field(default_factory=dict)
    """App stream name → unified columns written back to it (see ``flows.sources.crm.writeback``)."""


def app_spec(ac: AppConfig) -> kt.AppSpec:
    table = [ac.line_items.table] if ac.line_items else []
    fields = ["$id", "$revision", ac.updated_field, *ac.field_map.values(), *table]
    return kt.AppSpec(
        app=ac.app,
        updated_field=ac.updated_field,
        fields=list(dict.fromkeys(fields)),
        where=ac.where,
        guest_space=ac.guest_space,
        mode=ac.mode,
        lookback=timedelta(minutes=ac.lookback_minutes),
        sweep_deletes=ac.sweep_deletes,
        page_size=ac.page_size,
    )


def client_for(cfg: Config, ac: AppConfig, token: str) -> httpx.Client:
    return httpx.Client(base_url=cfg.base_url, headers={"X-Cybozu-API-Token": token}, timeout=60)


def streams(
    name: str, cfg: Config, ws: Workspace, *, client: httpx.Client | None = None
) -> list[StreamSpec]:
    opts = map_options(name, ws, cfg.currency)
    out = []
    for stream, ac in cfg.apps.items():
        api = LazyClient(partial(_api, name, cfg, ws, stream, ac, client))
        mapping = m.AppMapping(
            entity=ac.entity,
            field_map=dict(ac.field_map),
            user_domain=ac.user_domain,
            activity_kind=ac.activity_kind,
            won_stages=tuple(ac.won_stages),
            lost_stages=tuple(ac.lost_stages),
            key_prefix=f"{name}:{stream}",
            line_table=ac.line_items.table if ac.line_items else None,
            line_map=dict(ac.line_items.field_map) if ac.line_items else {},
            tax_included=ac.tax_included,
        )
        out.append(
            StreamSpec(
                connector=name,
                stream=stream,
                read=partial(_read, api, app_spec(ac)),
                cursor_type=kt.KintoneCursor,
                source_id=_source_id,
                map=partial(_map, mapping, opts),
                fingerprint=config_fingerprint(ac.model_dump(exclude={"token_env"})),
            )
        )
    return out


def quota(name: str, cfg: Config, ws: Workspace, *, client: httpx.Client | None = None) -> str:
    """``kizuna check``: one record of every app read with its token; kintone reports no daily
    usage, only how many of its concurrent requests are free."""
    last = None
    for stream, ac in cfg.apps.items():
        last = crm_quota.kintone(_api(name, cfg, ws, stream, ac, client), app_spec(ac))
    if last is not None and last.remaining == 0:
        raise KizunaError(
            f"kintone is at its concurrent-request limit ({last.limit}). Fix: try again "
            "shortly, or find what else is calling the API"
        )
    shown = last.text() if last is not None else "no apps"
    return f"apps {', '.join(cfg.apps)} readable; {shown} (daily usage is not reported by kintone)"


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
    """Update the records (by ``$id``, with revision checks) a stream read."""
    ac = cfg.apps.get(target)
    if ac is None:
        raise ConfigError(
            f"no app stream named {target!r}",
            file=str(ws.path),
            field=f"sources.{name}.writeback",
            fix=f"use one of: {', '.join(cfg.apps)}",
        )
    return kintone_write.sync(
        _api(name, cfg, ws, target, ac, client),
        app_spec(ac),
        "$id",
        desired,
        "update_only",
        dry_run=dry_run,
    )


def _api(
    name: str, cfg: Config, ws: Workspace, stream: str, ac: AppConfig, client: httpx.Client | None
) -> kt.Kintone:
    """One app's client: its own API token (kintone tokens are per app)."""
    c = client
    if c is None:
        token = resolve_secret(
            ac.token_env, file=str(ws.path), field=f"sources.{name}.apps.{stream}.token_env"
        )
        c = client_for(cfg, ac, token.get_secret_value())
    return kt.Kintone(c)


def _map(mapping: m.AppMapping, opts: MapOptions, raw: dict[str, Any]) -> Any:
    return m.map_record(raw, mapping, opts)


def _source_id(raw: dict[str, Any]) -> str:
    return str(kt.value(raw, "$id") or "")


def _read(api: Any, spec: kt.AppSpec, cursor: Cursor | None) -> Iterator[Page[Any]]:
    assert cursor is None or isinstance(cursor, kt.KintoneCursor)
    return kt.read_app(api(), spec, cursor)
