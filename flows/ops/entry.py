"""The flows as Prefect objects, for Prefect workers and ``kizuna serve``.

Kizuna's flow modules defer Prefect (``flows.ops.lazy``) so the CLI starts fast; Prefect
loads a deployment's entrypoint and requires a ``Flow``. Every entrypoint of
``deployments/table.py`` names one of these.

Each name is built when first asked for (PEP 562), importing only its own flow module: a
worker starts a fresh process for every flow run, and a ``sync-source`` run that imported
the campaign, report and identity flows as well paid close to a second of CPU for code it
never runs (``tests/deployments/test_table.py`` holds it to that).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys
import threading
from typing import Any

FLOWS: dict[str, tuple[str, str]] = {
    "sync_workspace": ("flows.sync", "sync_workspace"),
    "sync_fanout": ("flows.ops.fanout", "sync_fanout"),
    "resolve": ("flows.identity.resolve", "resolve"),
    "reminders_flow": ("flows.push.reminders", "reminders_flow"),
    "scheduled_campaigns": ("flows.push.campaigns", "scheduled_campaigns"),
    "daily_reports": ("flows.reports.flow", "daily_reports"),
    "pipeline_report": ("flows.reports.flow", "pipeline_report"),
}
"""Entrypoint name → (module, attribute) of the lazy flow it makes real."""


def __getattr__(name: str) -> Any:
    """The real flow ``name``, registered as this module's: ``kizuna serve`` makes
    deployments by module path (``flows.ops.entry.sync_workspace``), which a runner loads as
    a ``Flow``; the flow modules' own names are the lazy objects Prefect would refuse."""
    if name not in FLOWS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from flows.ops.lazy import prefect_flow

    module, attr = FLOWS[name]
    real = prefect_flow(getattr(importlib.import_module(module), attr))
    real.__module__ = __name__
    globals()[name] = real  # built once per process
    return real


def main() -> None:
    """``kizuna-engine``: the command a process work pool runs for each flow run (the
    ``command`` job variable of ``deployments/prefect.yaml``).

    It is Prefect's own ``python -m prefect.engine`` (the flow run's id is in
    ``PREFECT__FLOW_RUN_ID``), started by the interpreter Kizuna is installed in whatever
    ``python`` means on the worker's PATH. A process worker given a command starts it
    directly; without one it first starts a supervisor process of its own (another
    interpreter, Prefect imported again, the run's working directory copied) that a
    deployment with its code installed does not need: about a second of CPU less per run.
    """
    import runpy

    try:
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    exit_now(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # as the interpreter does with SystemExit("message")
    return 1


def exit_now(code: int) -> None:
    """End the process the way the interpreter would, minus tearing down every module.

    Everything an exit runs still runs, in the interpreter's order: the wait for non-daemon
    threads and the threading exit hooks, then the ``atexit`` handlers (Prefect drains its
    log and event queues to the API there, ``logging`` flushes its handlers), then the
    standard streams. What is skipped is the garbage collection of a process that has
    imported Prefect, SQLAlchemy and pydantic: half a CPU-second and a second of wall time
    per flow run, spent after the run's final state is already on the server.
    """
    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter calls first
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(code)
