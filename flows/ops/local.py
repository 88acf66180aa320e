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
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from types import SimpleNamespace
from typing import Any

from prefect import Flow, Task
from prefect.logging import disable_run_logger
from prefect.states import Failed
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from warehouse import runs

_lock = threading.Lock()
_depth = 0
_pool: ThreadPoolExecutor | None = None
WORKERS = 8


def _delays(task: Task[Any, Any]) -> list[float]:
    d = task.retry_delay_seconds
    if d is None:
        return [0.0]
    if isinstance(d, (int, float)):
        return [float(d)]
    return [float(x) for x in d] or [0.0]


def call_task(task: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
    """The task's function, retried as its decorator says (retries, delays, condition)."""
    kwargs.pop("return_state", None)
    kwargs.pop("wait_for", None)
    delays = _delays(task)
    attempt = 1
    while True:
        try:
            return task.fn(*args, **kwargs)
        except Exception as exc:
            if attempt > (task.retries or 0):
                raise
            condition = task.retry_condition_fn
            run: Any = SimpleNamespace(run_count=attempt)  # what retry conditions read
            if condition is not None and not condition(task, run, Failed(data=exc)):
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


def _submit(task: Task[Any, Any], *args: Any, **kwargs: Any) -> LocalFuture:
    assert _pool is not None
    return LocalFuture(_pool.submit(call_task, task, *args, **kwargs))


def _map(task: Task[Any, Any], *iterables: Any, **kwargs: Any) -> list[LocalFuture]:
    return [_submit(task, *args, **kwargs) for args in zip(*iterables, strict=True)]


def _call_flow(flow: Flow[Any, Any], *args: Any, **kwargs: Any) -> Any:
    kwargs.pop("return_state", None)
    kwargs.pop("wait_for", None)
    return flow.fn(*args, **kwargs)


PATCHES: dict[tuple[type, str], Callable[..., Any]] = {
    (Task, "__call__"): call_task,
    (Task, "submit"): _submit,
    (Task, "map"): _map,
    (Flow, "__call__"): _call_flow,
}


@contextmanager
def inline() -> Iterator[None]:
    """Tasks, submits and subflows run as plain calls while the block runs (re-entrant)."""
    global _depth, _pool
    with _lock:
        _depth += 1
        if _depth == 1:
            saved = {key: key[0].__dict__[key[1]] for key in PATCHES}
            _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="kizuna-task")
            for (cls, attr), fn in PATCHES.items():
                setattr(cls, attr, fn)
            _inline_saved.update(saved)
    try:
        with disable_run_logger():
            yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (cls, attr), fn in _inline_saved.items():
                    setattr(cls, attr, fn)
                _inline_saved.clear()
                if _pool is not None:
                    _pool.shutdown(wait=True)
                    _pool = None


_inline_saved: dict[tuple[type, str], Any] = {}


def run(flow: Flow[Any, Any], engine: Engine, params: dict[str, Any]) -> Any:
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
