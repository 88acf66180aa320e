"""Scale-out on a work pool: one flow run per source, so every worker takes a share.

``sync-all`` in ``deployments/prefect.yaml`` runs :func:`sync_fanout`: it starts one run of the
``sync-source`` deployment per enabled source (any worker of the pool may pick each up), waits
for them all, then resolves identities once. A source's streams stay in one run; two runs of
one stream are kept apart by the warehouse's per-stream lease.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flows.config import load
from flows.ops.lazy import flow, run_logger
from flows.settings import workspace_path
from flows.sources import registry

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

POLL_SECONDS = 2.0


@flow(name="kizuna-sync-fanout", log_prints=False)
def sync_fanout(
    workspace_file: str | None = None, deployment: str = "kizuna-sync/sync-source"
) -> dict[str, Any]:
    """Start ``deployment`` once per enabled source, wait for all, then resolve identities."""
    from prefect.deployments import run_deployment

    path = workspace_path(workspace_file)
    names = registry.enabled_sources(load(path))
    runs: dict[str, UUID] = {}
    for name in names:
        started: FlowRun = run_deployment(  # type: ignore[assignment]  # sync call
            deployment,
            parameters={"workspace_file": workspace_file, "sources": [name], "resolve": False},
            timeout=0,
        )
        runs[name] = started.id
    states = wait_for(runs)
    failed = sorted(n for n, s in states.items() if s != "COMPLETED")
    from flows.identity.resolve import has_people, resolve

    resolved = resolve(path) if has_people(path) else None
    run_logger().info("sync runs: %s", states)
    if failed:
        raise RuntimeError(f"sync failed for {', '.join(failed)}: see their flow runs")
    return {"runs": {n: str(i) for n, i in runs.items()}, "states": states, "identity": resolved}


def wait_for(runs: dict[str, UUID]) -> dict[str, str]:
    """Each run's final state type, polled from the API (a run may wait for a free worker)."""
    from prefect.client.orchestration import get_client

    final: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        while len(final) < len(runs):
            for name, run_id in runs.items():
                if name in final:
                    continue
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    final[name] = state.type.value
            if len(final) < len(runs):
                time.sleep(POLL_SECONDS)
    return final
