"""One machine: every Kizuna schedule served from one process (``kizuna serve``).

Only the list of (flow, name, schedule) lives here; the flows hold the logic. The cron
expressions are read in the workspace's time zone (JST by default).
"""

from __future__ import annotations

import importlib
from typing import Any

# (module:flow, deployment name, cron, description). Flows missing from an install are skipped.
SCHEDULES: list[tuple[str, str, str, str]] = [
    ("flows.sync:sync_workspace", "sync-all", "*/15 * * * *", "Sync every enabled source."),
    ("flows.push.reminders:reminders_flow", "reminders", "0 8-19 * * 1-5", "Evaluate reminder rules."),
    ("flows.push.campaigns:scheduled_campaigns", "campaigns", "*/30 * * * *", "Run due campaigns."),
    ("flows.reports.flow:daily_reports", "daily-reports", "0 18 * * 1-5", "Draft each rep's 日報."),
    ("flows.reports.flow:pipeline_report", "pipeline-report", "0 7 * * 1-5", "Write the pipeline page."),
]


def deployments(workspace_file: str, time_zone: str) -> list[Any]:
    from prefect.client.schemas.schedules import CronSchedule

    out = []
    for target, name, cron, description in SCHEDULES:
        module, attr = target.split(":")
        try:
            flow = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        out.append(
            flow.to_deployment(
                name=name,
                schedules=[CronSchedule(cron=cron, timezone=time_zone)],
                parameters={"workspace_file": workspace_file},
                description=description,
                concurrency_limit=1,
            )
        )
    return out


def serve(workspace_file: str, time_zone: str) -> None:
    from prefect import serve as prefect_serve

    prefect_serve(*deployments(workspace_file, time_zone))
