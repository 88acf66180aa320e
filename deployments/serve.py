"""One machine: every schedule of the table served from one process (``kizuna serve``).

Deployments are named ``serve-<name>`` so they never overwrite the work pool's deployments
of ``prefect.yaml`` on a shared server. Before serving, the schedules are checked to produce
runs: a server whose scheduler is off would otherwise leave ``serve`` waiting forever.
"""

from __future__ import annotations

import importlib
import time
from typing import Any
from uuid import UUID

from deployments.table import cron_for, for_target
from kizuna.errors import ConfigError

FIRST_RUNS_TIMEOUT = 60.0
"""How long the server's scheduler may take to plan the first runs of new schedules."""


def deployments(workspace_file: str, time_zone: str, overrides: dict[str, str]) -> list[Any]:
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.types.entrypoint import EntrypointType

    out = []
    for d in for_target("serve"):
        module, attr = d.entrypoint.rsplit(".", 1)
        flow = getattr(importlib.import_module(module), attr)
        cron = cron_for(d, overrides)
        out.append(
            flow.to_deployment(
                name=d.name_for("serve"),
                schedules=[CronSchedule(cron=cron, timezone=time_zone)] if cron else [],
                parameters={**d.parameters, "workspace_file": workspace_file},
                description=d.description,
                concurrency_limit=d.concurrency_limit,
                # by module path: the runner loads flows.ops.entry's real flows (the flow
                # modules' own names are lazy objects, see flows.ops.lazy)
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return out


def check_schedules_plan_runs(ids: list[UUID], timeout: float = FIRST_RUNS_TIMEOUT) -> None:
    """Wait until the server has planned a run of the scheduled deployments, or refuse."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=ids)), limit=1
            )
            if runs:
                return
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"the Prefect server planned no scheduled run in {int(timeout)} s: its "
                    "scheduler is not running",
                    field="PREFECT_API_URL",
                    fix="run the server with its services (`prefect server start`), or unset "
                    "PREFECT_API_URL so `kizuna serve` starts its own",
                )
            time.sleep(2.0)


def serve(workspace_file: str, time_zone: str, overrides: dict[str, str]) -> None:
    """Register the table's ``serve`` deployments, check they get runs, then serve them."""
    from prefect import serve as prefect_serve

    items = deployments(workspace_file, time_zone, overrides)
    ids = [d.apply() for d in items]
    scheduled = [i for i, d in zip(ids, items, strict=True) if d.schedules]
    if scheduled:
        check_schedules_plan_runs(scheduled)
    prefect_serve(*items, print_starting_message=False)
