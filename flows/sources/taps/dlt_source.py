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
from flows.sources.registry import StreamFields
from flows.sources.taps import discovery
from flows.sources.taps.records import MappedStream, record_key
from flows.sources.taps.singer import masker
from flows.workspace import SourceConfig, Workspace
from kizuna.errors import BadRecord, ConfigError
from mappings.spreadsheet import nested
from mappings.spreadsheet import rows as mapping
from warehouse import records as r

MAPPING_VERSION = 1
DISCOVER_SAMPLE = 20
"""Records ``kizuna sources discover`` reads from each resource to find its fields."""

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


def _made(name: str, cfg: Config, ws: Workspace) -> tuple[Any, list[str]]:
    """A factory calling the source with its arguments (secrets resolved), and the secrets."""
    fn = _function(name, cfg, ws)
    kwargs = dict(cfg.args)
    secrets = []
    for arg, env in cfg.secret_args.items():
        where = f"sources.{name}.secret_args.{arg}"
        value = resolve_secret(env, file=str(ws.path), field=where).get_secret_value()
        kwargs[arg] = value
        secrets.append(value)
    return (lambda: fn(**kwargs)), secrets


def check(name: str, cfg: Config, ws: Workspace) -> str:
    """For ``kizuna check``: dlt is installed and the source function imports (not called)."""
    _function(name, cfg, ws)
    return f"{cfg.source} importable; resources {', '.join(cfg.resources)} (kizuna sources discover {name})"


def discover(name: str, cfg: Config, ws: Workspace) -> list[StreamFields]:
    """Every resource of the source: its key, its incremental cursor, whether a sync reads it,
    and its fields (declared columns and the first records, read without moving the cursor)
    with where each maps."""
    make, secrets = _made(name, cfg, ws)
    mask = masker(secrets)
    views = []
    try:
        found = conn.sample(make, limit=DISCOVER_SAMPLE)
    except Exception as exc:
        raise conn.classified(exc, mask) from None
    for s in found:
        mapped = cfg.resources.get(s.name)
        key = (mapped.key if mapped else None) or s.primary_key
        how = f"dlt resource, key {', '.join(key) or f'(none: set resources.{s.name}.key)'}"
        if s.incremental:
            how += f", incremental on {s.incremental}"
        how += f"; {len(s.records)} record(s) sampled"
        if s.error:
            how += f" (stopped: {mask(s.error)[:300]})"
        if mapped:
            how += f"; read by a sync (resources.{s.name})"
        else:
            how += f"; not read: add resources.{s.name} to sources.{name} to sync it"
        fields = discovery.record_fields(s.declared, s.records)
        views.append(discovery.explain(name, s.name, "resources", fields, mapped, how))
    names = {s.name for s in found}
    for res in cfg.resources:
        if res not in names:
            how = f"listed under resources: but the source has no such resource (it has: {', '.join(sorted(names))})"
            views.append(discovery.explain(name, res, "resources", [], cfg.resources[res], how))
    return views


def streams(name: str, cfg: Config, ws: Workspace) -> list[StreamSpec]:
    mappers = {
        res: mapping.SheetMapping(columns=dict(m.columns), phone_region=ws.company.phone_region)
        for res, m in cfg.resources.items()
    }
    keys: dict[str, list[str]] = {res: list(m.key or []) for res, m in cfg.resources.items()}

    secrets: list[str] = []

    def make() -> Any:
        factory, found = _made(name, cfg, ws)
        secrets[:] = found
        made = factory()
        for res, resource in conn.resources_of(made).items():
            if res in keys and not keys[res]:
                keys[res] = conn.primary_key(resource)
        return made

    def read(cursor: Cursor | None) -> Iterator[Page[Any]]:
        start = cursor if isinstance(cursor, conn.DltCursor) else None
        return conn.pages(
            make,
            start,
            keep=frozenset(cfg.resources),
            page_size=cfg.page_size,
            describe=lambda text: masker(secrets)(text),
        )

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
