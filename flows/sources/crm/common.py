"""What the three CRM sources (Salesforce, HubSpot, kintone) build alike for their streams.

Each source logs in lazily (a stream that never reads never needs the secret) and maps with
per-source options taken from the workspace's company settings; those two pieces live here
so the sources cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from flows.workspace import Workspace
from mappings.crm.common import FieldMap, MapOptions

T = TypeVar("T")


class LazyClient(Generic[T]):
    """Calls ``factory`` on first use and keeps its client; ``client`` (tests) skips it."""

    def __init__(self, factory: Callable[[], T], client: T | None = None) -> None:
        self._factory = factory
        self._client = client

    def __call__(self) -> T:
        if self._client is None:
            self._client = self._factory()
        return self._client


def map_options(
    name: str, ws: Workspace, currency: str, field_maps: Mapping[str, FieldMap] | None = None
) -> MapOptions:
    return MapOptions(
        source=name,
        field_maps=dict(field_maps or {}),
        currency=currency,
        time_zone=ws.company.time_zone,
        phone_region=ws.company.phone_region,
        internal_domains=tuple(ws.company.domains),
    )


def apply_mapper(
    mapper: Callable[[dict[str, Any], MapOptions], Any], opts: MapOptions, raw: dict[str, Any]
) -> Any:
    """``StreamSpec.map`` for mappers that take ``(raw, opts)``, bound with ``partial``."""
    return mapper(raw, opts)
