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

POLL_SECONDS = 1.0
"""How often the runs' states are read (one request for all of them): a run's end is seen
this long after it happens, at most."""


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
    # The resolver's modules load while the runs start (this process only waits), not after
    # the last one has ended.
    from flows.identity.resolve import has_people, resolve

    states = wait_for(runs)
    failed = sorted(n for n, s in states.items() if s != "COMPLETED")
    resolved = resolve(path) if has_people(path) else None
    run_logger().info("sync runs: %s", states)
    if failed:
        raise RuntimeError(f"sync failed for {', '.join(failed)}: see their flow runs")
    return {"runs": {n: str(i) for n, i in runs.items()}, "states": states, "identity": resolved}


def wait_for(runs: dict[str, UUID]) -> dict[str, str]:
    """Each run's final state type, polled from the API (a run may wait for a free worker)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    names = {run_id: name for name, run_id in runs.items()}
    final: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        while len(final) < len(runs):
            pending = [i for i, n in names.items() if n not in final]
            found = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=pending)),
                limit=len(pending),
            )
            for run in found:
                if run.state is not None and run.state.is_final():
                    final[names[run.id]] = run.state.type.value
            if len(final) < len(runs):
                time.sleep(POLL_SECONDS)
    return final
