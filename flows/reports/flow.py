"""Prefect flows for reports: the daily 日報 drafts and the manager's pipeline page.

``daily_reports`` plans the (rep, day) pairs in one query, then drafts them in batches of
:data:`BATCH` reps per task (a task run per rep would cost more than the report), and ends
with a table artifact of what each rep's draft holds. ``pipeline_report`` is one task.
"""

from __future__ import annotations

from typing import Any

from flows.config import load
from flows.ops.lazy import flow, task
from flows.reports.run import draft_batch, plan, write_pipeline
from flows.runtime import table_artifact
from flows.settings import workspace_path
from warehouse.write.upsert import chunks

BATCH = 50


@task(task_run_name="plan reports")
def plan_task(
    workspace_file: str, day: str | None, up_to: str | None, staff: str | None
) -> list[tuple[int, str]]:
    return plan(load(workspace_file), day, up_to=up_to, staff_email=staff)


@task(task_run_name="draft {size} reports")
def draft_task(
    workspace_file: str, pairs: list[tuple[int, str]], size: int
) -> list[dict[str, Any]]:
    return [w.row() for w in draft_batch(load(workspace_file), pairs)]


@flow(name="kizuna-daily-reports", log_prints=False)
def daily_reports(
    workspace_file: str | None = None,
    date: str | None = None,
    up_to: str | None = None,
    staff: str | None = None,
) -> list[dict[str, Any]]:
    """Draft one 日報 per rep with activity on ``date`` (YYYY-MM-DD, company time zone).

    Without a date each rep gets their latest day with activity on or before ``up_to``
    (default today): the draft a rep opens at the end of the day, or the morning after.
    """
    workspace_file = workspace_path(workspace_file)
    pairs = plan_task(workspace_file, date, up_to, staff)
    rows: list[dict[str, Any]] = []
    for part in chunks(pairs, BATCH):
        rows.extend(draft_task(workspace_file, list(part), len(part)))
    _artifact(rows)
    return rows


@task(task_run_name="pipeline page")
def pipeline_task(workspace_file: str, team: str | None = None) -> dict[str, Any]:
    path, p = write_pipeline(load(workspace_file), team)
    return {
        "file": str(path),
        "open_deals": p.open_count,
        "open_amount": int(p.open_amount),
        "weighted": int(p.weighted),
        "closing_this_month": p.closing_count,
        "won_this_month": p.won_count,
        "stale": p.stale_count,
    }


@flow(name="kizuna-pipeline-report", log_prints=False)
def pipeline_report(workspace_file: str | None = None, team: str | None = None) -> dict[str, Any]:
    """Write ``reports/pipeline.html`` (or one team's page) for managers and put its
    headline figures in the UI."""
    workspace_file = workspace_path(workspace_file)
    summary = pipeline_task(workspace_file, team)
    table_artifact(
        key="kizuna-pipeline",
        table=[summary],
        description="Pipeline headline figures (amounts in JPY).",
    )
    return summary


def _artifact(rows: list[dict[str, Any]]) -> None:
    """Counts per rep only: subjects and customer names stay in the reports themselves."""
    table_artifact(
        key="kizuna-daily-reports",
        table=rows or [{"staff": "", "date": "", "status": "no activity"}],
        description="日報 drafted in this run (one row per rep).",
    )
