"""The ``resolve`` Prefect flow: identity resolution after syncs, in tasks per range.

A full run is one task per id range (features and blocking keys), one scoring task (the
weights are learned from all rows at once, the pairs compared in bulk) and one clustering task; an incremental run (the usual case after a sync)
is a single task, because it only touches the blocks around the rows that changed.
"""

from __future__ import annotations

import time
from typing import Any

from flows import progress
from flows.config import load
from flows.identity.config import settings_for
from flows.ops import events
from flows.ops.lazy import flow, flow_run_id, task
from flows.ops.lazy import run_logger as get_run_logger
from flows.runtime import engine_for
from warehouse import lease
from warehouse.db import write_transaction
from warehouse.identity import blocking, survivorship
from warehouse.identity import resolve as rs
from warehouse.identity.evidence import drop_stale_matches, save_matches
from warehouse.state import now


def _setup(workspace_file: str) -> tuple[Any, Any, Any]:
    ws = load(workspace_file)
    settings, rules = settings_for(ws)
    return engine_for(ws.warehouse_url), settings, rules


@task(task_run_name="identity prepare {lo}-{hi}")
def prepare_task(workspace_file: str, lo: int, hi: int) -> tuple[int, int]:
    engine, settings, _ = _setup(workspace_file)
    with write_transaction(engine) as conn:
        return blocking.prepare_range(conn, settings, lo, hi)


@task(task_run_name="identity score")
def score_task(workspace_file: str, mark_iso: str) -> dict[str, Any]:
    from datetime import datetime

    engine, settings, _ = _setup(workspace_file)
    stats = rs.ResolveStats()
    with write_transaction(engine) as conn:
        found = rs.score_learned(conn, settings, stats)
        save_matches(conn, found, datetime.fromisoformat(mark_iso))
    return {"pairs": stats.pairs, "blocks": stats.blocks, "oversized": stats.oversized_blocks}


@task(task_run_name="identity cluster")
def cluster_task(workspace_file: str, mark_iso: str, stats: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime

    engine, settings, rules = _setup(workspace_file)
    mark = datetime.fromisoformat(mark_iso)
    st = rs.ResolveStats(**stats)
    with write_transaction(engine) as conn:
        drop_stale_matches(conn, mark)
        changed = rs.cluster_all(conn, mark)
        survivorship.refresh(conn, changed, rules)
        st.clusters_changed = len(changed)
        st.organizations = rs.resolve_companies(conn, mark, settings)
        rs._count_decisions(conn, st)
        rs.save_state(conn, mark, st)
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
        t0 = time.monotonic()
        mark = now()
        with engine.connect() as conn:
            ranges = blocking.id_ranges(conn)
        records = keys = 0
        # One step per id range prepared, then scoring, then clustering.
        tick = progress.start("identity (full)", len(ranges) + 2) or (lambda _n: None)
        for lo, hi in ranges:
            n, k = prepare_task(workspace_file, lo, hi)
            records, keys = records + n, keys + k
            tick(1)
        got = score_task(workspace_file, mark.isoformat())
        tick(1)
        pairs, blocks, oversized = got["pairs"], got["blocks"], got["oversized"]
        stats = rs.ResolveStats(
            mode="full",
            records=records,
            keys=keys,
            blocks=blocks,
            oversized_blocks=oversized,
            pairs=pairs,
        )
        stats.seconds = round(time.monotonic() - t0, 2)
        result = cluster_task(workspace_file, mark.isoformat(), stats.as_dict())
        tick(1)
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
