"""Prefect flow for reminders: one task per rule, then one task delivering what is new."""

from __future__ import annotations

from typing import Any

from flows.config import load
from flows.ops.lazy import flow, task
from flows.push.channels import build_channel
from flows.push.config import push_config
from flows.push.reminder_run import deliver, evaluate
from flows.runtime import engine_for
from flows.settings import workspace_path
from flows.sync import only_transient


@task(task_run_name="rule {rule}")
def rule_task(workspace_file: str, rule: str) -> dict[str, int]:
    ws = load(workspace_file)
    res = evaluate(engine_for(ws.warehouse_url), push_config(ws), rule)
    return {"opened": res.opened, "resolved": res.resolved, "reopened": res.reopened}


@task(retries=3, retry_delay_seconds=[5, 30, 120], retry_condition_fn=only_transient)
def deliver_task(workspace_file: str) -> dict[str, Any]:
    ws = load(workspace_file)
    cfg = push_config(ws)
    channel = build_channel(cfg, cfg.reminders.channel)
    try:
        res = deliver(engine_for(ws.warehouse_url), cfg, channel)
    finally:
        channel.close()
    return {
        "sent": res.sent,
        "digests": res.digests,
        "recovered": res.recovered,
        "skipped": res.skipped,
        "in_doubt": res.in_doubt,
    }


@flow(name="kizuna-reminders", log_prints=False)
def reminders_flow(workspace_file: str | None = None) -> dict[str, Any]:
    workspace_file = workspace_path(workspace_file)
    cfg = push_config(load(workspace_file))
    rules = {name: rule_task(workspace_file, name) for name in cfg.reminders.rules}
    return {"rules": rules, "delivery": deliver_task(workspace_file)}
