"""Kizuna's process settings, read from the environment with pydantic-settings.

The workspace file configures a company; these configure a process (a laptop, a Prefect
worker, a container): where the workspace is, which warehouse to use, how ``kizuna serve``
runs its Prefect server. Every one is a ``KIZUNA_*`` variable, so a work pool's
``job_variables.env`` or a container spec can set them without a file on the host.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kizuna.errors import ConfigError


class Settings(BaseSettings):
    """``KIZUNA_<FIELD>`` in the environment; each read fresh (tests and workers change them)."""

    model_config = SettingsConfigDict(env_prefix="KIZUNA_", extra="ignore")

    workspace: Path | None = None
    """The workspace file a flow run reads when its ``workspace_file`` parameter is empty."""
    warehouse_url: str | None = None
    """Overrides ``warehouse.url`` of the workspace (the shared PostgreSQL past one machine)."""
    warehouse_secret: str | None = None
    """The Prefect Secret block holding the warehouse URL, read on the worker when
    ``KIZUNA_WAREHOUSE_URL`` is unset (``job_variables.env`` in ``deployments/prefect.yaml``)."""
    prefect_database_url: str | None = None
    """``kizuna serve``: the Prefect server's database (``postgresql+asyncpg://…``); SQLite
    under the workspace's ``.kizuna/prefect`` when unset."""
    serve_port: int = Field(default=4200, ge=0, le=65535)
    """``kizuna serve``: the port of the Prefect server it starts (0 picks a free one)."""
    schedules: dict[str, str] = Field(default_factory=dict)
    """Cron overrides by deployment name, as JSON: ``{"sync-all": "*/5 * * * *"}``."""
    storage_url: str | None = None
    """Where reports and the outbox are written, seen by every worker: an fsspec URL
    (``s3://bucket/kizuna``) or a shared folder; the workspace's folder when unset."""
    cache_dir: Path | None = None
    """Where remote file sources (an fsspec URL in a source's ``path``, or under
    ``KIZUNA_STORAGE_URL``) are mirrored before reading; the same path on every worker keeps
    a spreadsheet's cursor valid between them. ``<temp dir>/kizuna-files`` when unset."""
    account_streams: int = Field(default=2, ge=1, le=100)
    """Streams of one source (one API account) running at once across every worker: the
    slots of its Prefect global concurrency limit when one is created (``flows.ops.limits``)."""


def settings() -> Settings:
    return Settings()


def workspace_path(param: str | None) -> str:
    """The workspace a flow run reads: its parameter, else ``KIZUNA_WORKSPACE`` on this host.

    Resolved where the run executes (the worker), never where it was deployed.
    """
    if param:
        return param
    env = settings().workspace
    if env is None:
        raise ConfigError(
            "no workspace file for this flow run",
            field="workspace_file",
            fix=(
                "pass the workspace_file parameter, or set KIZUNA_WORKSPACE in the worker's "
                "environment (job_variables.env in deployments/prefect.yaml)"
            ),
        )
    return str(env)
