"""Running a flow's code in this process with no Prefect API: the fast CLI path.

Without ``PREFECT_API_URL`` a Prefect flow call boots a temporary server first (20–30 s on a
busy machine). Here the same flow function runs as plain Python instead: inside
:func:`inline`, calling a task runs its function (with the task's retries, delays and retry
condition), ``.submit()`` runs it on a thread pool and returns a future, and calling a subflow
runs its function. The run's history goes to the warehouse (``warehouse.runs``) instead of
Prefect. Nothing here is used on a worker: there the real Prefect engine runs.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from flows.ops import lazy
from warehouse import runs

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
WORKERS = 8


def _delays(task: lazy.LazyTask[Any, Any]) -> list[float]:
    d = task.retry_delay_seconds
    if d is None:
        return [0.0]
    if isinstance(d, (int, float)):
        return [float(d)]
    return [float(x) for x in d] or [0.0]


class _Failed:
    """What a retry condition reads of a failed attempt: ``state.result(...)`` gives the error."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def result(self, raise_on_failure: bool = True) -> BaseException:
        if raise_on_failure:
            raise self.exc
        return self.exc

    def is_failed(self) -> bool:
        return True


def call_task(task: lazy.LazyTask[Any, Any], *args: Any, **kwargs: Any) -> Any:
    """The task's function, retried as its decorator says (retries, delays, condition)."""
    kwargs.pop("return_state", None)
    kwargs.pop("wait_for", None)
    delays = _delays(task)
    attempt = 1
    while True:
        try:
            return task.fn(*args, **kwargs)
        except Exception as exc:
            if attempt > task.retries:
                raise
            condition = task.retry_condition_fn
            run: Any = SimpleNamespace(run_count=attempt)  # what retry conditions read
            if condition is not None and not condition(task, run, _Failed(exc)):
                raise
            time.sleep(delays[min(attempt, len(delays)) - 1])
            attempt += 1


class LocalFuture:
    """What ``.submit()`` returns here: the parts of a Prefect future flows use."""

    def __init__(self, inner: Future[Any]) -> None:
        self._inner = inner

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        try:
            return self._inner.result(timeout)
        except Exception as exc:
            if raise_on_failure:
                raise
            return exc

    def wait(self, timeout: float | None = None) -> None:
        with suppress(TimeoutError):
            self._inner.exception(timeout)

    def done(self) -> bool:
        return self._inner.done()


def submit(task: lazy.LazyTask[Any, Any], *args: Any, **kwargs: Any) -> LocalFuture:
    with _lock:
        global _pool
        if _pool is None:  # the first submit of this inline block
            _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="kizuna-task")
        pool = _pool
    return LocalFuture(pool.submit(call_task, task, *args, **kwargs))


def map_task(task: lazy.LazyTask[Any, Any], *iterables: Any, **kwargs: Any) -> list[LocalFuture]:
    return [submit(task, *args, **kwargs) for args in zip(*iterables, strict=True)]


@contextmanager
def inline() -> Iterator[None]:
    """Kizuna's tasks, submits and subflows (``flows.ops.lazy``) run as plain calls while the
    block runs (re-entrant; process-wide, so the pool's threads see it too)."""
    global _pool
    with _lock:
        lazy._depth += 1
    try:
        yield
    finally:
        with _lock:
            lazy._depth -= 1
            pool = _pool if lazy._depth == 0 else None
            if pool is not None:
                _pool = None
        if pool is not None:
            pool.shutdown(wait=True)


def run(flow: lazy.LazyFlow[Any, Any], engine: Engine, params: dict[str, Any]) -> Any:
    """Run ``flow`` here, its run kept in the warehouse's ``flow_run`` table."""
    run_id = str(params.get("run_id") or uuid.uuid4())
    try:
        runs.start(engine, run_id, flow.name, {k: _plain(v) for k, v in params.items()})
        kept = True
    except SQLAlchemyError:  # a warehouse we cannot write to: the flow itself says why
        kept = False
    try:
        with inline():
            result = flow.fn(**params)
    except BaseException as exc:
        if kept:
            runs.finish(engine, run_id, error=f"{type(exc).__name__}: {exc}")
        raise
    if kept:
        runs.finish(engine, run_id)
    return result


def _plain(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v)
