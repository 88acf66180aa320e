"""Source types: how a ``sources:`` entry of the workspace becomes streams for the engine.

Each source type is a module under ``flows/`` (``source_<type>.py``) exposing ``Config`` (a
``SourceConfig`` subclass) and ``streams(name, config, workspace) -> list[StreamSpec]``.
The table below is the one place types are registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast

from pydantic import ValidationError

from flows.engine import StreamSpec
from flows.workspace import SourceConfig, Workspace, config_error
from kizuna.errors import ConfigError

SOURCE_TYPES: dict[str, str] = {
    # type name in kizuna.yaml → module implementing it
    "salesforce": "flows.sources.crm.salesforce",
    "hubspot": "flows.sources.crm.hubspot",
    "kintone": "flows.sources.crm.kintone",
    "spreadsheet": "flows.sources.spreadsheet",
    "ics": "flows.sources.ics",
    "mail": "flows.sources.mail",
    "gmail": "flows.sources.gmail",
    "m365": "flows.sources.m365",
    "gcal": "flows.sources.gcal",
    "gpeople": "flows.sources.gpeople",
    "imap": "flows.sources.imap",
    "caldav": "flows.sources.caldav",
}


def _module(type_name: str) -> Any:
    return importlib.import_module(SOURCE_TYPES[type_name])


def source_config(ws: Workspace, name: str) -> SourceConfig:
    raw = ws.sources.get(name)
    if raw is None:
        known = ", ".join(sorted(ws.sources)) or "none configured"
        raise ConfigError(
            f"no source named {name!r} (sources: {known})",
            file=str(ws.path),
            field="sources",
        )
    type_name = raw.get("type") if isinstance(raw, dict) else None
    if type_name not in SOURCE_TYPES:
        raise ConfigError(
            f"unknown source type {type_name!r}",
            file=str(ws.path),
            field=f"sources.{name}.type",
            fix=f"use one of: {', '.join(sorted(SOURCE_TYPES))}",
        )
    model = cast(type[SourceConfig], _module(type_name).Config)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, ws.path, prefix=f"sources.{name}", model=model) from None


def validate_sources(ws: Workspace) -> None:
    for name in ws.sources:
        source_config(ws, name)


def streams(ws: Workspace, name: str) -> list[StreamSpec]:
    cfg = source_config(ws, name)
    build = cast(Callable[[str, Any, Workspace], list[StreamSpec]], _module(cfg.type).streams)
    return build(name, cfg, ws)


def enabled_sources(ws: Workspace) -> list[str]:
    return [n for n in ws.sources if source_config(ws, n).enabled]
