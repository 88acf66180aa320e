"""``type: dlt`` sources: any dlt source or resource (a verified source, or your own
``@dlt.source``) as a Kizuna source, without a dlt pipeline or destination.

``source: package.module:function`` names the decorated function; ``args`` are passed as
written and ``secret_args`` (argument → secret name) through Kizuna's secret resolver, never
dlt's own config injection. dlt's incremental state is the stream's cursor, committed with
the run's last page. Each listed resource maps with the spreadsheet column map on dotted
paths (``properties.email: person.email``); a record that does not map is quarantined.
Needs the ``dlt`` extra: ``pip install 'kizuna[dlt]'``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from connectors.page import Cursor, Page
from connectors.taps import dlt_source as conn
from flows.engine import StreamSpec, config_fingerprint
from flows.secrets import resolve_secret
from flows.sources.taps.records import MappedStream, record_key
from flows.workspace import SourceConfig, Workspace
from kizuna.errors import BadRecord, ConfigError
from mappings.spreadsheet import nested
from mappings.spreadsheet import rows as mapping
from warehouse import records as r

MAPPING_VERSION = 1

TEMPLATE = """\
# Any dlt source or resource (pip install 'kizuna[dlt]'); dlt's incremental state is kept
# as this stream's cursor.
# shop:
#   type: dlt
#   source: my_company.dlt_sources:shopify_customers   # module:function (@dlt.source)
#   args: {shop_url: https://example.myshopify.com}
#   secret_args: {private_app_password: SHOPIFY_TOKEN}
#   resources:
#     customers:
#       columns: {email: person.email, default_address.company: organization.name}
"""


class Config(SourceConfig):
    type: Literal["dlt"] = "dlt"
    source: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """``package.module:function``: a ``@dlt.source`` or ``@dlt.resource``."""
    args: dict[str, Any] = Field(default_factory=dict)
    secret_args: dict[str, str] = Field(default_factory=dict)
    """Argument → secret name (environment variable or Prefect Secret block)."""
    resources: dict[str, MappedStream] = Field(min_length=1)
    """The resources to read and how each maps; others are not read."""
    stream: str = Field(default="dlt", min_length=1)
    page_size: int = Field(default=1000, ge=1, le=50_000)


def _function(name: str, cfg: Config, ws: Workspace) -> Any:
    where = f"sources.{name}.source"
    try:
        import dlt  # noqa: F401
    except ImportError:
        raise ConfigError(
            "dlt is not installed",
            file=str(ws.path),
            field=f"sources.{name}.type",
            fix="pip install 'kizuna[dlt]'",
        ) from None
    module, _, attr = cfg.source.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot import {cfg.source!r} ({exc})",
            file=str(ws.path),
            field=where,
            fix="name an installed module and its @dlt.source/@dlt.resource function",
        ) from None


def streams(name: str, cfg: Config, ws: Workspace) -> list[StreamSpec]:
    mappers = {
        res: mapping.SheetMapping(columns=dict(m.columns), phone_region=ws.company.phone_region)
        for res, m in cfg.resources.items()
    }
    keys: dict[str, list[str]] = {res: list(m.key or []) for res, m in cfg.resources.items()}

    def make() -> Any:
        fn = _function(name, cfg, ws)
        kwargs = dict(cfg.args)
        for arg, env in cfg.secret_args.items():
            where = f"sources.{name}.secret_args.{arg}"
            kwargs[arg] = resolve_secret(env, file=str(ws.path), field=where).get_secret_value()
        made = fn(**kwargs)
        for res, resource in conn.resources_of(made).items():
            if res in keys and not keys[res]:
                keys[res] = conn.primary_key(resource)
        return made

    def read(cursor: Cursor | None) -> Iterator[Page[Any]]:
        start = cursor if isinstance(cursor, conn.DltCursor) else None
        return conn.pages(make, start, keep=frozenset(cfg.resources), page_size=cfg.page_size)

    def key_of(raw: dict[str, Any]) -> str:
        res = raw["resource"]
        return record_key(res, raw["record"], keys.get(res) or [], "(no primary_key)")

    def source_id(raw: dict[str, Any]) -> str:
        try:
            return key_of(raw)
        except BadRecord:
            return f"{raw['resource']}:?"

    def map_row(raw: dict[str, Any]) -> list[r.Record]:
        return mappers[raw["resource"]](nested.flatten(raw["record"]), key_of(raw))

    fingerprint = config_fingerprint(
        {
            "v": MAPPING_VERSION,
            "resources": {k: v.model_dump() for k, v in cfg.resources.items()},
            "region": ws.company.phone_region,
        }
    )
    return [
        StreamSpec(
            connector=name,
            stream=cfg.stream,
            read=read,
            cursor_type=conn.DltCursor,
            source_id=source_id,
            map=map_row,
            fingerprint=fingerprint,
        )
    ]
