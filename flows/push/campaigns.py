"""Prefect flow for campaigns: feedback first, then plan (dry run) or send, a task per batch.

A batch task retries only on ``TransientError`` (4xx SMTP replies, a dropped connection);
its retry re-reads the ledger, so nothing already sent is sent again and an in-doubt send
is asked about at the channel first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from flows import progress
from flows.config import load
from flows.ops import events
from flows.ops.lazy import flow, flow_run_id, task
from flows.ops.lazy import run_logger as get_run_logger
from flows.push.campaign_run import approved_plan, open_batches, plan
from flows.push.campaign_send import campaign_lease, send_batch
from flows.push.channels import build_channel
from flows.push.config import push_config
from flows.push.feedback import scan_folders
from flows.runtime import engine_for
from flows.settings import workspace_path
from flows.sync import only_transient
from warehouse.activation import ledger
from warehouse.activation.audience import utc
from warehouse.state import now as utcnow


def _setup(workspace_file: str) -> tuple[Any, Any]:
    ws = load(workspace_file)
    return push_config(ws), engine_for(ws.warehouse_url)


@task(task_run_name="feedback")
def feedback_task(workspace_file: str) -> dict[str, int]:
    cfg, engine = _setup(workspace_file)
    res = scan_folders(engine, cfg)
    return dict(vars(res))


LEASE_WAIT = 300.0
"""Seconds a second run of one campaign waits for the first before it gives up, saying so."""


def _run_id() -> str:
    return flow_run_id() or "local"


@task(task_run_name="plan {name}")
def plan_task(workspace_file: str, name: str) -> dict[str, Any]:
    cfg, engine = _setup(workspace_file)
    with campaign_lease(engine, cfg, name, run_id=_run_id(), wait=LEASE_WAIT):
        view = plan(engine, cfg, name)
    return {"plan_id": view.plan_id, "members": view.members, **dict(view.counts)}


@task(
    retries=3,
    retry_delay_seconds=[5, 30, 120],
    retry_condition_fn=only_transient,
    task_run_name="send {name} batch {index}",
)
def send_batch_task(
    workspace_file: str, name: str, plan_id: int, entry_ids: list[int], index: int, owner: str
) -> dict[str, int]:
    cfg, engine = _setup(workspace_file)
    channel = build_channel(cfg, cfg.campaign(name).channel)
    try:
        return send_batch(engine, cfg, name, plan_id, entry_ids, channel, owner=owner)
    finally:
        channel.close()


@flow(name="kizuna-campaign", log_prints=False)
def run_campaign(workspace_file: str, name: str, dry_run: bool = False) -> dict[str, Any]:
    """Dry run: store the plan (the approval gate). Real run: send exactly the approved plan."""
    feedback = feedback_task(workspace_file)
    if dry_run:
        return {"feedback": feedback, "plan": plan_task(workspace_file, name)}
    return {"feedback": feedback, **_send(workspace_file, name)}


def _send(workspace_file: str, name: str) -> dict[str, Any]:
    """Send the approved plan, holding the campaign's lease from plan check to last batch."""
    logger = get_run_logger()
    cfg, engine = _setup(workspace_file)
    totals: dict[str, int] = {}
    waited: list[str] = []

    def on_wait(line: str) -> None:
        waited.append(line)
        logger.warning(line)

    lease = campaign_lease(engine, cfg, name, run_id=_run_id(), wait=LEASE_WAIT, on_wait=on_wait)
    with lease as held:
        if waited and cfg.campaign(name).approval == "required":
            with engine.connect() as conn:
                if ledger.current_plan(conn, name) is None:  # the other run sent it all
                    logger.warning("campaign %s: the run we waited for sent the plan", name)
                    return {"plan_id": None, "outcomes": {}}
        plan_id = approved_plan(engine, cfg, name)
        batches = list(open_batches(engine, plan_id, cfg.campaign(name).batch_size))
        tick = progress.start(f"campaign {name}", sum(len(b) for b in batches))
        for i, ids in enumerate(batches, start=1):
            got = send_batch_task(workspace_file, name, plan_id, ids, i, held.owner)
            for k, v in got.items():
                totals[k] = totals.get(k, 0) + v
            if tick is not None:
                tick(len(ids))
    logger.info("campaign %s plan %s: %s", name, plan_id, totals)
    events.after_campaign(name, totals)
    return {"plan_id": plan_id, "outcomes": totals}


def is_due(schedule: str, last: datetime | None, now: datetime, tz: str) -> bool:
    """Has the campaign's cron fired since ``last`` (its last plan)? Never run → due."""
    if last is None:
        return True
    zone = ZoneInfo(tz)
    fire = croniter(schedule, utc(last).astimezone(zone)).get_next(datetime)
    return bool(fire <= utc(now).astimezone(zone))


@flow(name="kizuna-campaigns-scheduled", log_prints=False)
def scheduled_campaigns(workspace_file: str | None = None) -> dict[str, Any]:
    """What ``kizuna serve`` runs: every campaign with a ``schedule:`` whose time has come.

    ``approval: required`` campaigns send only a plan an admin approved with a dry run (and
    pick up lines deferred by quiet hours); ``approval: auto`` campaigns plan and send.
    """
    workspace_file = workspace_path(workspace_file)
    cfg, engine = _setup(workspace_file)
    feedback = feedback_task(workspace_file)
    ran: dict[str, Any] = {}
    for name, c in cfg.campaigns.items():
        if c.schedule is None:
            continue
        with engine.connect() as conn:
            current = ledger.current_plan(conn, name)
            last = ledger.last_plan_time(conn, name)
        if c.approval == "required" and current is None:
            continue
        stamp = current.created_at if c.approval == "required" and current is not None else last
        if (current is not None and current.status == "running") or is_due(
            c.schedule, stamp, utcnow(), cfg.time_zone
        ):
            ran[name] = _send(workspace_file, name)
    return {"feedback": feedback, "campaigns": ran}
