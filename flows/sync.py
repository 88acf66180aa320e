"""Prefect flows that sync sources into the warehouse: one task per stream, never per record."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from flows import progress
from flows.budget import share_budgets
from flows.config import load
from flows.engine import run_stream
from flows.ops import events, limits
from flows.ops.lazy import flow, flow_run_id, run_logger, task
from flows.runtime import engine_for, table_artifact
from flows.settings import workspace_path
from flows.sources import registry
from kizuna.errors import LeaseHeld, TransientError

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State


class StreamsFailed(RuntimeError):
    """Some streams failed; each one's reason is in its ``sync_run`` row and in ``errors``
    (for a stream that could not even record its run, such as on a read-only warehouse)."""

    def __init__(self, errors: list[tuple[str, BaseException]]) -> None:
        super().__init__("some streams failed: " + "; ".join(f"{k}: {e}" for k, e in errors))
        self.errors = errors


def only_transient(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry a stream only when the failure says retrying can help (429, 5xx, timeouts).

    Prefect's retry delays are fixed per task; when the source said how long to wait
    (Retry-After), the difference is waited here so the retry does not arrive too early.
    """
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # pragma: no cover - a result we cannot read is not worth a retry
        return False
    if not isinstance(exc, TransientError):
        return False
    if exc.retry_after:
        if exc.retry_after > MAX_RETRY_AFTER:
            return False  # the next scheduled run will come sooner than a retry should
        attempt = int(getattr(task_run, "run_count", 1) or 1)
        planned = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
        _sleep(exc.retry_after - planned)
    return True


RETRY_DELAYS: list[float] = [2.0, 15.0, 60.0]
MAX_RETRY_AFTER = 900.0
"""A source asking for more than 15 minutes is better served by the next scheduled run."""


LEASE_WAIT = 300.0
"""Seconds a stream (or resolution) waits for another run holding it before it is skipped."""

PARALLEL_STREAMS = 4
"""Streams synced at once on PostgreSQL: each holds its own lease, each stream's records are
its own (a company a row only names is a reference record of that stream), and what several
streams share (activities by key, staff users by address, identity features) is found or
created with ``ON CONFLICT``, so parallel streams leave the tables a serial run leaves
(tests/flows/test_sync_overlap.py). SQLite, whose writers queue anyway, runs them in turn."""


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


@task(
    retries=3,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=only_transient,
    task_run_name="sync {source}/{stream}",
)
def sync_stream(
    workspace_file: str, source: str, stream: str, run_id: str, lease_wait: float = LEASE_WAIT
) -> dict[str, Any]:
    """Sync one stream to the present; returns what it did (rows per outcome).

    If another run holds the stream for longer than ``lease_wait``, the stream is skipped
    with one line saying who has it: that run is doing this work, so this is not a failure.
    """
    ws = load(workspace_file)
    spec = next(s for s in registry.streams(ws, source) if s.stream == stream)
    engine = engine_for(ws.warehouse_url)
    share_budgets(engine)  # one quota per API account across every worker of this warehouse
    logger = run_logger()
    total = spec.total_hint()
    tick = progress.start(f"{source}/{stream}", total)
    try:
        with limits.stream_slot(ws, source):  # the account's slots, across every worker
            result = run_stream(
                engine,
                spec,
                run_id,
                progress=tick,
                lease_wait=lease_wait,
                zone=ws.company.time_zone,
                on_wait=lambda line: _tell(logger, line),
            )
    except LeaseHeld as exc:
        _tell(logger, f"skipped: {exc}")
        return {"connector": source, "stream": stream, "skipped": str(exc)}
    if tick is not None and total is not None and result.read < total:
        tick(total - result.read)  # an unchanged file is not read at all: the bar ends full
    logger.info(
        "%s/%s: %s read, %s inserted, %s updated, %s unchanged, %s deleted, %s quarantined",
        source,
        stream,
        result.read,
        result.stats.inserted,
        result.stats.updated,
        result.unchanged,
        result.stats.deleted,
        result.stats.quarantined,
    )
    return result.as_dict()


def _tell(logger: Any, line: str) -> None:
    """A line for the Prefect log and for the person watching the CLI."""
    logger.warning(line)
    progress.note(line)


def _run_id() -> str:
    return flow_run_id() or "local"


@flow(
    name="kizuna-sync",
    log_prints=False,
    threads=PARALLEL_STREAMS,
)
def sync_workspace(
    workspace_file: str | None = None,
    sources: list[str] | None = None,
    run_id: str | None = None,
    resolve: bool = True,
    lease_wait: float = LEASE_WAIT,
) -> list[dict[str, Any]]:
    """Sync the named sources (all enabled ones by default), then resolve identities.

    Every stream holds its own lease, so on PostgreSQL independent streams can run at once
    (``PARALLEL_STREAMS``); on SQLite, where writers queue anyway, one after another. A failed
    stream does not stop the others; the flow fails at the end if any stream failed, so the
    run is visibly red in the Prefect UI. A stream another run is syncing is skipped after
    ``lease_wait`` seconds with a line naming that run, which is not a failure.
    ``resolve=False`` leaves identity resolution to the caller (the per-source runs of a
    work pool, which resolve once after all of them).
    """
    workspace_file = workspace_path(workspace_file)
    ws = load(workspace_file)
    names = sources or registry.enabled_sources(ws)
    limits.ensure(ws, names)  # on a Prefect server: one concurrency limit per account
    run_id = run_id or _run_id()
    work = [(name, spec.stream) for name in names for spec in registry.streams(ws, name)]
    results: list[dict[str, Any]] = []
    failures: list[tuple[str, BaseException]] = []
    outcomes: list[tuple[str, str, Callable[[], dict[str, Any]]]] = []
    if PARALLEL_STREAMS > 1 and engine_for(ws.warehouse_url).dialect.name == "postgresql":
        for n, s in work:
            future = sync_stream.submit(workspace_file, n, s, run_id, lease_wait)
            outcomes.append((n, s, future.result))
    else:
        for n, s in work:
            outcomes.append((n, s, partial(sync_stream, workspace_file, n, s, run_id, lease_wait)))
    for name, stream, outcome in outcomes:
        try:
            results.append(outcome())
        except Exception as exc:
            failures.append((f"{name}/{stream}", exc))
            results.append({"connector": name, "stream": stream, "error": str(exc)})
    _artifact(results)
    events.after_sync(results)
    # Identity resolution (flows/identity/resolve.py): link the people these streams changed.
    from flows.identity.resolve import has_people
    from flows.identity.resolve import resolve as resolve_flow

    if resolve and has_people(workspace_file):
        try:
            resolve_flow(workspace_file, lease_wait=lease_wait)
        except LeaseHeld as exc:
            run_logger().warning("identity resolution skipped: %s", exc)
        except Exception as exc:
            failures.append(("identity resolution", exc))
    if failures:
        raise StreamsFailed(failures)
    return results


def _artifact(results: list[dict[str, Any]]) -> None:
    """A table in the Prefect UI of what each stream did (counts only, never payloads)."""
    cols = (
        "connector",
        "stream",
        "read",
        "inserted",
        "updated",
        "unchanged",
        "deleted",
        "quarantined",
        "error",
        "skipped",
    )
    table_artifact(
        key="kizuna-sync-summary",
        table=[{c: r.get(c, "") for c in cols} for r in results],
        description="Rows per stream for this sync run.",
    )
