"""``type: singer`` sources: any Singer tap (Meltano's hub lists hundreds) as a Kizuna source.

The tap runs with the config file from the workspace, merged with the secrets named under
``config_secrets`` (resolved by ``flows.secrets``, written to a 0600 file that is deleted
after the run, masked in the tap's stderr and in errors), and the catalog file. The tap's
STATE is the stream's cursor, committed with each page. Each tap stream listed under
``streams:`` is mapped with the spreadsheet column language on dotted paths into the record
(``columns: {properties.email: person.email}``); a record without its key properties, a line
that is not JSON or too long is quarantined with its line number.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from connectors.page import Cursor, Page
from connectors.taps import singer as conn
from flows.engine import StreamSpec, config_fingerprint
from flows.ops.lazy import run_context, run_logger
from flows.secrets import resolve_secret
from flows.sources.registry import StreamFields
from flows.sources.taps import discovery
from flows.sources.taps.records import MappedStream, record_key
from flows.workspace import SourceConfig, Workspace
from kizuna.errors import BadRecord, ConfigError
from mappings.spreadsheet import nested
from mappings.spreadsheet import rows as mapping
from warehouse import records as r

MAPPING_VERSION = 1

TEMPLATE = """\
# Any Singer tap (pip install tap-…): its STATE is kept as this stream's cursor.
# crm_tap:
#   type: singer
#   command: [tap-pipedrive]          # the executable (and fixed arguments)
#   config: taps/pipedrive.json       # the tap's config without secrets
#   config_secrets: {api_token: PIPEDRIVE_TOKEN}   # config key → secret name
#   catalog: taps/pipedrive.catalog.json
#   streams:
#     persons:
#       columns: {name: person.full_name, primary_email: person.email, org_id.name: organization.name}
"""


class Config(SourceConfig):
    type: Literal["singer"] = "singer"
    command: list[str] = Field(min_length=1)
    """The tap executable and any fixed arguments (``--config`` etc. are added)."""
    config: str | None = None
    """The tap's JSON config file (no secrets in it), relative to the workspace file."""
    config_secrets: dict[str, str] = Field(default_factory=dict)
    """Tap config key → the secret's name (environment variable or Prefect Secret block)."""
    catalog: str | None = None
    catalog_flag: Literal["--catalog", "--properties"] = "--catalog"
    streams: dict[str, MappedStream] = Field(min_length=1)
    """The tap streams to keep and how each maps; records of other streams are dropped."""
    stream: str = Field(default="tap", min_length=1)
    page_size: int = Field(default=1000, ge=1, le=50_000)
    max_line_bytes: int = Field(default=conn.MAX_LINE_BYTES, ge=1024, le=64_000_000)


def _tap_config(name: str, cfg: Config, ws: Workspace) -> tuple[dict[str, Any], list[str]]:
    where = f"sources.{name}"
    base: dict[str, Any] = {}
    if cfg.config:
        base = _json_file(ws, cfg.config, f"{where}.config", "the tap config", "a JSON file")
        if not isinstance(base, dict):
            raise ConfigError(
                "the tap config must be a JSON object",
                file=str(ws.path),
                field=f"{where}.config",
            )
    secrets = []
    for key, env in cfg.config_secrets.items():
        value = resolve_secret(env, file=str(ws.path), field=f"{where}.config_secrets.{key}")
        base[key] = value.get_secret_value()
        secrets.append(value.get_secret_value())
    return base, secrets


def masker(secrets: list[str]) -> Callable[[str], str]:
    values = sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)

    def mask(text: str) -> str:
        for s in values:
            text = text.replace(s, "****")
        return text

    return mask


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Prefect's run logger in a run; outside one the tap's stderr still shows, on
    ``kizuna.singer`` (unlike ``run_logger``'s silent one: a tap's complaints matter)."""
    return run_logger() if run_context() is not None else logging.getLogger("kizuna.singer")


def _json_file(ws: Workspace, name: str, field: str, what: str, kind: str) -> Any:
    """A JSON file the workspace names, or the one-line error that says which and how."""
    path = ws.resolve(name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read {what} {path} ({exc})",
            file=str(ws.path),
            field=field,
            fix=f"point it at {kind} (relative to the workspace file)",
        ) from None


def _source_id(raw: dict[str, Any], keys: dict[str, list[str] | None]) -> str:
    stream = raw["stream"]
    fields = keys.get(stream) or raw.get("key") or []
    return record_key(stream, raw["record"], fields, "(no key_properties)")


def _catalog_file(name: str, cfg: Config, ws: Workspace) -> dict[str, tuple[bool, list[str]]]:
    if not cfg.catalog:
        return {}
    field = f"sources.{name}.catalog"
    data = _json_file(ws, cfg.catalog, field, "the catalog", "the tap's JSON catalog")
    return discovery.catalog_selection(data if isinstance(data, dict) else {})


def check(name: str, cfg: Config, ws: Workspace) -> str:
    """For ``kizuna check``: the tap can start and its files are readable (nothing is run)."""
    exe = cfg.command[0]
    found = shutil.which(exe) or (exe if os.access(exe, os.X_OK) else None)
    if found is None:
        raise ConfigError(
            f"the tap {exe!r} is not installed or not executable",
            file=str(ws.path),
            field=f"sources.{name}.command",
            fix="install it (pip install tap-…) or give its full path",
        )
    config, _ = _tap_config(name, cfg, ws)
    chosen = _catalog_file(name, cfg, ws)
    picked = [s for s in cfg.streams if chosen.get(s, (cfg.catalog is None, []))[0]]
    return (
        f"{Path(found).name} found; config has {len(config)} keys; "
        f"streams {', '.join(picked) or 'none selected in the catalog'} "
        f"(kizuna sources discover {name})"
    )


def discover(name: str, cfg: Config, ws: Workspace) -> list[StreamFields]:
    """The tap's own catalog (``--discover``): every stream, whether a sync reads it (listed
    under ``streams:`` and selected in the catalog file), its properties and where each maps."""
    config, secrets = _tap_config(name, cfg, ws)
    mask, log = masker(secrets), _logger()
    run = conn.TapRun(command=cfg.command, config=config)
    found = conn.discover(run, log=lambda line: log.info("%s: %s", name, mask(line)), describe=mask)
    chosen = _catalog_file(name, cfg, ws)
    views, seen = [], set()
    for entry in found["streams"]:
        if not isinstance(entry, dict):
            continue
        sid = str(entry.get("tap_stream_id") or entry.get("stream") or "?")
        seen.add(sid)
        mapped = cfg.streams.get(sid)
        key = (mapped.key if mapped else None) or entry.get("key_properties") or []
        how = f"tap stream, key {', '.join(map(str, key)) or '(none: set streams.{sid}.key)'}"
        selected, left_out = chosen.get(sid, (cfg.catalog is None, []))
        if mapped and selected:
            how += f"; read by a sync (streams.{sid})"
        elif mapped:
            how += "; listed under streams: but not selected in the catalog file (never sent)"
        else:
            how += f"; not read: add streams.{sid} to sources.{name} to sync it"
        if left_out:
            how += f"; properties not selected in the catalog: {', '.join(left_out)}"
        fields = discovery.schema_fields(entry.get("schema"))
        fields = [f for f in fields if f.split(".")[0] not in left_out]
        views.append(discovery.explain(name, sid, "streams", fields, mapped, how))
    for sid in cfg.streams:
        if sid not in seen:
            how = f"listed under streams: but not in the tap's catalog (it has: {', '.join(sorted(seen))})"
            views.append(discovery.explain(name, sid, "streams", [], cfg.streams[sid], how))
    return views


def streams(name: str, cfg: Config, ws: Workspace) -> list[StreamSpec]:
    keys = {s: t.key for s, t in cfg.streams.items()}
    mappers = {
        s: mapping.SheetMapping(columns=dict(t.columns), phone_region=ws.company.phone_region)
        for s, t in cfg.streams.items()
    }
    catalog: Path | None = ws.resolve(cfg.catalog) if cfg.catalog else None

    def read(cursor: Cursor | None) -> Iterator[Page[Any]]:
        config, secrets = _tap_config(name, cfg, ws)
        mask, log = masker(secrets), _logger()
        run = conn.TapRun(
            command=cfg.command,
            config=config,
            catalog=catalog,
            catalog_flag=cfg.catalog_flag,
            streams=frozenset(cfg.streams),
        )
        return conn.pages(
            run,
            cursor if isinstance(cursor, conn.SingerCursor) else None,
            page_size=cfg.page_size,
            max_line_bytes=cfg.max_line_bytes,
            log=lambda line: log.info("%s: %s", name, mask(line)),
            describe=mask,
        )

    def source_id(raw: dict[str, Any]) -> str:
        try:
            return _source_id(raw, keys)
        except BadRecord:
            return f"{raw['stream']}:?"

    def map_row(raw: dict[str, Any]) -> list[r.Record]:
        sid = _source_id(raw, keys)
        return mappers[raw["stream"]](nested.flatten(raw["record"]), sid)

    fingerprint = config_fingerprint(
        {
            "v": MAPPING_VERSION,
            "streams": {s: t.model_dump() for s, t in cfg.streams.items()},
            "region": ws.company.phone_region,
        }
    )
    return [
        StreamSpec(
            connector=name,
            stream=cfg.stream,
            read=read,
            cursor_type=conn.SingerCursor,
            source_id=source_id,
            map=map_row,
            fingerprint=fingerprint,
        )
    ]
