"""The ``resolve`` Prefect flow: identity resolution after syncs, one task per run.

A run is one task: a full one prepares every row's features in id ranges (the progress bar
moves per range), learns the weights from all rows at once and compares the blocked pairs in
bulk, in one process, so the features are never written out and read back; an incremental
run (the usual case after a sync) touches only the blocks around the rows that changed.
"""

from __future__ import annotations

from typing import Any

from flows import progress
from flows.config import load
from flows.identity.config import settings_for
from flows.ops import events
from flows.ops.lazy import flow, flow_run_id, task
from flows.ops.lazy import run_logger as get_run_logger
from flows.runtime import engine_for
from warehouse import lease
from warehouse.identity import resolve as rs
from warehouse.identity import survivorship


def _setup(workspace_file: str) -> tuple[Any, Any, Any]:
    ws = load(workspace_file)
    settings, rules = settings_for(ws)
    return engine_for(ws.warehouse_url), settings, rules


@task(task_run_name="identity full")
def full_task(workspace_file: str) -> dict[str, Any]:
    engine, settings, rules = _setup(workspace_file)
    with engine.connect() as conn:
        total = rs.steps(conn)
    # One step per id range prepared, then scoring, then clustering.
    tick = progress.start("identity (full)", total) or (lambda _n: None)
    st = rs.resolve_full(
        engine,
        settings,
        lambda conn, changed: survivorship.refresh(conn, changed, rules),
        lambda _phase: tick(1),
    )
    return st.as_dict()


@task(task_run_name="identity incremental")
def incremental_task(workspace_file: str) -> dict[str, Any]:
    engine, settings, rules = _setup(workspace_file)
    st = rs.resolve_incremental(
        engine, settings, lambda conn, changed: survivorship.refresh(conn, changed, rules)
    )
    return st.as_dict()


@flow(name="kizuna-resolve", log_prints=False)
def resolve(workspace_file: str, full: bool = False, lease_wait: float = 300.0) -> dict[str, Any]:
    """Resolve people into customers: incremental by default, from scratch with ``full``.

    One resolution at a time per warehouse (the ``identity`` lease): a second one waits up
    to ``lease_wait`` seconds for the first, then raises ``LeaseHeld`` naming it.
    """
    engine, _, _ = _setup(workspace_file)
    ws = load(workspace_file)
    logger = get_run_logger()
    with lease.held(
        engine,
        "identity",
        run_id=_run_id(),
        what="identity resolution is being run",
        wait=lease_wait,
        zone=ws.company.time_zone,
        on_wait=logger.warning,
    ):
        return _resolve(workspace_file, full)


def _run_id() -> str:
    return flow_run_id() or "local"


def _resolve(workspace_file: str, full: bool) -> dict[str, Any]:
    engine, _, _ = _setup(workspace_file)
    with engine.connect() as conn:
        first = rs.watermark(conn) is None
    if not (full or first):
        tick = progress.start("identity (incremental)", 1)
        result = incremental_task(workspace_file)
        if tick is not None:
            tick(1)
    else:
        result = full_task(workspace_file)
    get_run_logger().info(
        "identity %s: %s rows, %s pairs compared, %s merges, %s to review, %s clusters changed",
        result["mode"],
        result["records"],
        result["pairs"],
        result["merges"],
        result["reviews"],
        result["clusters_changed"],
    )
    events.after_resolve(result)
    return result


def has_people(workspace_file: str) -> bool:
    """Whether the warehouse holds any person (resolution has nothing to do otherwise)."""
    from sqlalchemy import select

    from warehouse import schema as t

    ws = load(workspace_file)
    with engine_for(ws.warehouse_url).connect() as conn:
        return conn.execute(select(t.Person.id).limit(1)).first() is not None
