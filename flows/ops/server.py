"""The Prefect server schedules run on: find it, check it schedules, or start one.

Prefect's temporary in-process server (what runs when ``PREFECT_API_URL`` is unset) registers
deployments but creates no scheduled runs, so ``kizuna serve`` never relies on it: it uses the
server in ``PREFECT_API_URL`` after checking that server's scheduler is on, or starts a real
``prefect server start`` (SQLite under the workspace, or ``KIZUNA_PREFECT_DATABASE_URL``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kizuna.errors import ConfigError

START_TIMEOUT = 120.0


def api_url() -> str | None:
    return os.environ.get("PREFECT_API_URL") or None


def healthy(url: str, timeout: float = 1.0) -> bool:
    """Does a Prefect API answer at ``url`` (ending in ``/api``)?"""
    import httpx  # here: a CLI run with no Prefect API never needs it

    try:
        return httpx.get(f"{url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def scheduler_enabled(url: str) -> bool:
    """What the server at ``url`` says of its scheduler service (its own settings)."""
    import httpx

    try:
        reply = httpx.get(f"{url.rstrip('/')}/admin/settings", timeout=10.0)
        reply.raise_for_status()
        return bool(reply.json()["server"]["services"]["scheduler"]["enabled"])
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return False


def require_scheduler(url: str) -> None:
    """Refuse a server that cannot run schedules, with one line naming the fix."""
    if not healthy(url, timeout=5.0):
        raise ConfigError(
            f"no Prefect server answers at {url}",
            field="PREFECT_API_URL",
            fix="start it (`prefect server start`), or unset PREFECT_API_URL so `kizuna serve` "
            "starts its own",
        )
    if not scheduler_enabled(url):
        raise ConfigError(
            f"the Prefect server at {url} runs no scheduler, so schedules would never fire",
            field="PREFECT_API_URL",
            fix="restart it with its services on (`prefect server start`, without --no-services "
            "or --no-scheduler), or unset PREFECT_API_URL so `kizuna serve` starts its own",
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def started(
    home: Path, port: int, database_url: str | None = None, scheduler: bool = True
) -> Iterator[str]:
    """A ``prefect server start`` on loopback with its services (the scheduler among them
    unless ``scheduler`` is False), for as long as the block runs; yields its API URL. Its
    log is ``home/server.log``."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED=str(scheduler).lower(),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    url = f"http://127.0.0.1:{port}/api"
    if healthy(url):
        raise ConfigError(
            f"port {port} already has a Prefect server",
            field="KIZUNA_SERVE_PORT",
            fix=f"set PREFECT_API_URL={url} to use it, or pick another port",
        )
    log = (home / "server.log").open("ab")
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C stops the runner first; the server is stopped after
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ConfigError(
                    "the Prefect server did not start",
                    file=str(home / "server.log"),
                    fix="read the log; a PostgreSQL database needs the pg_trgm extension",
                )
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
