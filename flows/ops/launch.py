"""Where a CLI command runs its flow: on the configured Prefect API, or here.

With ``PREFECT_API_URL`` set and answering, the flow runs as a Prefect flow run (visible in
the UI, its tasks recorded). Without one, the same flow code runs in-process
(``flows.ops.local``) with its history in the warehouse, and no temporary server is booted:
that is what keeps an unchanged ``kizuna sync`` within a few seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from flows.ops import local, server
from flows.ops.lazy import LazyFlow
from flows.runtime import engine_for, writable_engine

Where = Literal["prefect", "local"]


def where() -> tuple[Where, str | None]:
    """("prefect", url) when the configured API answers, else ("local", the url that did not)."""
    url = server.api_url()
    if url and server.healthy(url):
        return "prefect", url
    return "local", url


def run_flow(flow: LazyFlow[Any, Any], warehouse_url: str, **params: Any) -> Any:
    """Run ``flow`` with ``params`` where :func:`where` says; never on a warehouse this process
    can only read (one line instead of a failure per stream)."""
    writable_engine(warehouse_url)
    mode, _ = where()
    if mode == "prefect":
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        # The heartbeat thread costs a second per flow; the server sees state changes anyway.
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            return flow(**params)
    return local.run(flow, engine_for(warehouse_url), params)
