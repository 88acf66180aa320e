"""The flows as Prefect objects, for Prefect workers and ``kizuna serve``.

Kizuna's flow modules defer Prefect (``flows.ops.lazy``) so the CLI starts fast; Prefect
loads a deployment's entrypoint and requires a ``Flow``. Every entrypoint of
``deployments/table.py`` names one of these. Importing this module imports Prefect.
"""

from __future__ import annotations

from typing import Any

from flows.identity.resolve import resolve as _resolve
from flows.ops.fanout import sync_fanout as _sync_fanout
from flows.ops.lazy import prefect_flow
from flows.push.campaigns import scheduled_campaigns as _scheduled_campaigns
from flows.push.reminders import reminders_flow as _reminders_flow
from flows.reports.flow import daily_reports as _daily_reports
from flows.reports.flow import pipeline_report as _pipeline_report
from flows.sync import sync_workspace as _sync_workspace


def _here(flow: Any) -> Any:
    """The real flow, registered as this module's: ``kizuna serve`` makes deployments by
    module path (``flows.ops.entry.sync_workspace``), which a runner loads as a ``Flow``; the
    flow modules' own names are the lazy objects Prefect would refuse."""
    real = prefect_flow(flow)
    real.__module__ = __name__
    return real


sync_workspace: Any = _here(_sync_workspace)
sync_fanout: Any = _here(_sync_fanout)
resolve: Any = _here(_resolve)
reminders_flow: Any = _here(_reminders_flow)
scheduled_campaigns: Any = _here(_scheduled_campaigns)
daily_reports: Any = _here(_daily_reports)
pipeline_report: Any = _here(_pipeline_report)
