"""Prefect's ``@flow`` and ``@task``, applied only when Prefect is needed.

Importing Prefect costs about a second of CPU (its settings and client models), and the
CLI's in-process path (``flows.ops.local``, no Prefect API) never uses it. So Kizuna's flow
modules decorate with :func:`flow` and :func:`task` from here: the result keeps the function
and the decorator's options, and builds the real Prefect object on first use outside the
in-process path (a call under a Prefect flow run, ``.submit``, ``.to_deployment``, any other
Prefect attribute). Inside :func:`flows.ops.local.inline` the same objects run as plain calls
with the task's retry rules. Workers load :mod:`flows.ops.entry`, whose names are the real
Prefect flows (Prefect checks an entrypoint's type).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_depth = 0
"""How many :func:`flows.ops.local.inline` blocks are open (process-wide: their thread pool's
threads run tasks too)."""


def inline_active() -> bool:
    return _depth > 0


class _Lazy(Generic[P, R]):
    """The function, its decorator options, and the Prefect object once it is built."""

    _kind = ""

    def __init__(self, fn: Callable[P, R], options: dict[str, Any]) -> None:
        self.fn = fn
        self.options = options
        self._prefect: Any = None
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    @property
    def prefect(self) -> Any:
        """The real Prefect flow or task (imports Prefect the first time)."""
        if self._prefect is None:
            self._prefect = self._build()
        return self._prefect

    def _build(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        # Only for attributes this object lacks (name, with_options, to_deployment, ...).
        if name.startswith("__") or name in ("fn", "options", "_prefect"):
            raise AttributeError(name)
        return getattr(self.prefect, name)

    def __repr__(self) -> str:
        return f"<kizuna {self._kind} {self.fn.__qualname__}>"


class LazyTask(_Lazy[P, R]):
    """A task: a stream, a page range or a step, never a record (rule 4)."""

    _kind = "task"

    def _build(self) -> Any:
        from prefect import task as prefect_task

        return prefect_task(**self.options)(self.fn)

    @property
    def retries(self) -> int:
        return int(self.options.get("retries") or 0)

    @property
    def retry_delay_seconds(self) -> Any:
        return self.options.get("retry_delay_seconds")

    @property
    def retry_condition_fn(self) -> Any:
        return self.options.get("retry_condition_fn")

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if inline_active():
            from flows.ops import local

            return local.call_task(self, *args, **kwargs)  # type: ignore[no-any-return]
        return self.prefect(*args, **kwargs)  # type: ignore[no-any-return]

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        if inline_active():
            from flows.ops import local

            return local.submit(self, *args, **kwargs)
        return self.prefect.submit(*args, **kwargs)

    def map(self, *args: Any, **kwargs: Any) -> Any:
        if inline_active():
            from flows.ops import local

            return local.map_task(self, *args, **kwargs)
        return self.prefect.map(*args, **kwargs)


class LazyFlow(_Lazy[P, R]):
    """A flow; ``threads`` is its ``ThreadPoolTaskRunner``'s size (built with the flow)."""

    _kind = "flow"

    def __init__(self, fn: Callable[P, R], options: dict[str, Any], threads: int | None) -> None:
        super().__init__(fn, options)
        self.threads = threads

    @property
    def name(self) -> str:
        return str(self.options.get("name") or self.fn.__name__.replace("_", "-"))

    def _build(self) -> Any:
        from prefect import flow as prefect_flow

        options = dict(self.options)
        if self.threads is not None:
            from prefect.task_runners import ThreadPoolTaskRunner

            options["task_runner"] = ThreadPoolTaskRunner(max_workers=self.threads)
        return prefect_flow(**options)(self.fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if inline_active():
            kwargs.pop("return_state", None)
            kwargs.pop("wait_for", None)
            return self.fn(*args, **kwargs)
        return self.prefect(*args, **kwargs)  # type: ignore[no-any-return]


def task(**options: Any) -> Callable[[Callable[P, R]], LazyTask[P, R]]:
    """``@task(...)`` with Prefect's options, Prefect imported only when a run needs it."""

    def wrap(fn: Callable[P, R]) -> LazyTask[P, R]:
        return LazyTask(fn, options)

    return wrap


def flow(
    *, threads: int | None = None, **options: Any
) -> Callable[[Callable[P, R]], LazyFlow[P, R]]:
    """``@flow(...)`` with Prefect's options (``threads`` instead of a task runner)."""

    def wrap(fn: Callable[P, R]) -> LazyFlow[P, R]:
        return LazyFlow(fn, options, threads)

    return wrap


def run_context() -> Any:
    """The Prefect flow or task run this thread is in, or None; Prefect is never imported
    here: a process that has not imported it cannot be in one of its runs."""
    context = sys.modules.get("prefect.context")
    if context is None or inline_active():
        return None
    run = context.TaskRunContext.get() or context.FlowRunContext.get()
    return run


def in_flow_run() -> bool:
    context = sys.modules.get("prefect.context")
    if context is None or inline_active():
        return False
    ctx = context.FlowRunContext.get()
    return ctx is not None and ctx.flow_run is not None


def flow_run_id() -> str | None:
    """The id of the Prefect flow run this code runs in, or None."""
    context = sys.modules.get("prefect.context")
    if context is None or inline_active():
        return None
    ctx = context.FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx is not None and ctx.flow_run is not None else None


_quiet = logging.getLogger("kizuna.local-run")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Prefect's run logger inside a Prefect run; a silent logger otherwise (the CLI shows
    what matters through ``flows.progress``, as Prefect's disabled run logger did)."""
    if run_context() is None:
        return _quiet
    from prefect import get_run_logger

    return get_run_logger()


def prefect_flow(obj: Any) -> Any:
    """The real Prefect flow behind ``obj`` (itself when it already is one)."""
    return obj.prefect if isinstance(obj, LazyFlow) else obj
