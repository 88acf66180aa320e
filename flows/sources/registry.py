"""Source types: how a ``sources:`` entry of the workspace becomes streams for the engine.

A source type is a module exposing ``Config`` (a ``SourceConfig`` subclass), ``streams(name,
config, workspace) -> list[StreamSpec]`` and, optionally, ``TEMPLATE`` (commented YAML for
``kizuna init``) and ``discover(name, config, workspace) -> list[StreamFields]`` (what
``kizuna sources discover`` shows: each stream's fields and where they map). Types are found through the ``kizuna.sources`` entry-point group: Kizuna's
own types are declared in its ``pyproject.toml`` exactly as a third-party package declares
its own, so there is one way to add a source and no table to edit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any, cast

from pydantic import ValidationError

from flows.engine import StreamSpec
from flows.workspace import SourceConfig, Workspace, config_error
from kizuna.errors import ConfigError, FatalError
from mappings.spreadsheet.headers import HeaderUse

GROUP = "kizuna.sources"


@dataclass(frozen=True)
class StreamFields:
    """One stream as ``kizuna sources discover`` shows it, from a type's ``discover`` hook."""

    stream: str
    how: str
    """One line: what was read to find the fields, and whether a sync reads this stream."""
    uses: list[HeaderUse]
    """Each field and what it maps to, decided as the source's mapping decides it."""
    columns_at: str
    """Where the workspace maps this stream's fields (``sources.x.streams.y.columns``)."""


@dataclass(frozen=True)
class SourceType:
    """One installed source type: its name in ``kizuna.yaml``, where it comes from, its module."""

    name: str
    target: str
    """The entry point's value (``package.module``)."""
    package: str
    """The distribution that declares it (``kizuna`` for the built-ins)."""

    @property
    def builtin(self) -> bool:
        return self.package == "kizuna"

    def module(self) -> ModuleType:
        return _load(self.target)

    @property
    def config_model(self) -> type[SourceConfig]:
        return cast(type[SourceConfig], self.module().Config)


@functools.cache
def _load(target: str) -> ModuleType:
    import importlib

    return importlib.import_module(target.partition(":")[0])


def installed_entry_points(group: str) -> list[tuple[str, str, str]]:
    """(name, value, distribution) of every entry point in ``group``, checked that Kizuna's
    own are there: an install older than the entry points would otherwise know no types."""
    found = [
        (ep.name, ep.value, ep.dist.name if ep.dist else "?")
        for ep in metadata.entry_points(group=group)
    ]
    if not any(dist.lower() == "kizuna" for _, _, dist in found):
        raise FatalError(
            f"Kizuna's installed metadata has no {group!r} entry points (an install from "
            "before they existed). Fix: run `pip install -e .` (or reinstall kizuna)."
        )
    return found


@functools.cache
def source_types() -> dict[str, SourceType]:
    """Every installed source type by name; a plugin cannot shadow a built-in type."""
    out: dict[str, SourceType] = {}
    for name, value, dist in sorted(
        installed_entry_points(GROUP), key=lambda e: e[2].lower() != "kizuna"
    ):
        out.setdefault(name, SourceType(name=name, target=value, package=dist))
    return out


def source_type(type_name: str, *, file: str = "", field: str = "") -> SourceType:
    types = source_types()
    if type_name not in types:
        raise ConfigError(
            f"unknown source type {type_name!r}",
            file=file,
            field=field,
            fix=(
                f"use one of: {', '.join(sorted(types))} "
                "(`kizuna sources types` lists them; a plugin package adds more)"
            ),
        )
    return types[type_name]


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
    st = source_type(str(type_name), file=str(ws.path), field=f"sources.{name}.type")
    model = st.config_model
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, ws.path, prefix=f"sources.{name}", model=model) from None


def validate_sources(ws: Workspace) -> None:
    for name in ws.sources:
        source_config(ws, name)


def module_of(cfg: SourceConfig) -> Any:
    """The module implementing a validated source's type (for optional hooks: write-back)."""
    return source_type(cfg.type).module()


def streams(ws: Workspace, name: str) -> list[StreamSpec]:
    cfg = source_config(ws, name)
    build = cast(Callable[[str, Any, Workspace], list[StreamSpec]], module_of(cfg).streams)
    return build(name, cfg, ws)


def enabled_sources(ws: Workspace) -> list[str]:
    return [n for n in ws.sources if source_config(ws, n).enabled]
