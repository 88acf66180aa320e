"""The one table of Kizuna's deployments: which flow, on what schedule, with what parameters.

``kizuna serve`` (one machine) and ``deployments/prefect.yaml`` (work pools) are both made
from it, so the two paths cannot drift apart. Names differ by target: ``serve-sync-all`` is
served by ``kizuna serve``, ``sync-all`` lives in the work pool; one never overwrites the other.
Cron expressions are read in the company's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Target = Literal["serve", "pool"]


@dataclass(frozen=True)
class Deployment:
    name: str
    entrypoint: str
    """A module path to a real Prefect flow (``flows.ops.entry.sync_workspace``): workers
    import the installed package."""
    flow_name: str
    """The ``@flow(name=...)`` of the entrypoint: deployments are addressed as flow/name."""
    cron: str | None
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    targets: tuple[Target, ...] = ("serve", "pool")
    concurrency_limit: int | None = 1

    def name_for(self, target: Target) -> str:
        return f"serve-{self.name}" if target == "serve" else self.name


SYNC_SOURCE = "sync-source"
"""The pool deployment that syncs one source; ``sync-all`` starts one run of it per source."""

TABLE: tuple[Deployment, ...] = (
    # One machine: every source in one flow run (streams share one process).
    Deployment(
        "sync-all",
        "flows.ops.entry.sync_workspace",
        "kizuna-sync",
        "*/15 * * * *",
        "Sync every enabled source, then resolve identities.",
        targets=("serve",),
    ),
    # Work pools: one flow run per source, so every worker takes a share of the streams.
    Deployment(
        "sync-all",
        "flows.ops.entry.sync_fanout",
        "kizuna-sync-fanout",
        "*/15 * * * *",
        "Start one sync-source run per enabled source, wait, then resolve identities.",
        targets=("pool",),
    ),
    Deployment(
        SYNC_SOURCE,
        "flows.ops.entry.sync_workspace",
        "kizuna-sync",
        None,
        "Sync the sources named in `sources` (started by sync-all, or by hand).",
        parameters={"resolve": False},
        targets=("pool",),
        concurrency_limit=None,
    ),
    Deployment(
        "reminders",
        "flows.ops.entry.reminders_flow",
        "kizuna-reminders",
        "0 8-19 * * 1-5",
        "Evaluate reminder rules and deliver what is new.",
    ),
    Deployment(
        "campaigns",
        "flows.ops.entry.scheduled_campaigns",
        "kizuna-campaigns-scheduled",
        "*/30 * * * *",
        "Run the campaigns whose schedule has come.",
    ),
    Deployment(
        "daily-reports",
        "flows.ops.entry.daily_reports",
        "kizuna-daily-reports",
        "0 18 * * 1-5",
        "Draft each sales rep's daily report (日報).",
    ),
    Deployment(
        "pipeline-report",
        "flows.ops.entry.pipeline_report",
        "kizuna-pipeline-report",
        "0 7 * * 1-5",
        "Write the managers' pipeline page.",
    ),
)


def for_target(target: Target) -> list[Deployment]:
    return [d for d in TABLE if target in d.targets]


def cron_for(d: Deployment, overrides: dict[str, str]) -> str | None:
    """The schedule, unless ``KIZUNA_SCHEDULES`` overrides it for this deployment's name."""
    return overrides.get(d.name, d.cron) if d.cron is not None else None
