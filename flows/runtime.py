"""Process-wide settings for running Prefect quietly offline, and the engine cache.

``quiet_prefect`` must run before ``prefect`` is first imported: Prefect reads its settings
from the environment at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

_engines: dict[str, Engine] = {}

QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    "PREFECT_UI_ENABLED": "false",
}


def quiet_prefect(home: Path | None = None) -> None:
    """Offline, quiet defaults; anything the user already set wins."""
    for k, v in QUIET.items():
        os.environ.setdefault(k, v)
    if home is not None and "PREFECT_HOME" not in os.environ:
        home.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home)
    logging_yml = Path(__file__).with_name("logging.yaml")
    os.environ.setdefault("PREFECT_LOGGING_CONFIG_PATH", str(logging_yml))


def engine_for(url: str) -> Engine:
    """One migrated engine per warehouse URL per process (``postgres://`` accepted); a URL
    that cannot be opened raises one clear error (see ``flows.warehouse_url``)."""
    from flows.warehouse_url import normalize, open_or_explain

    url = normalize(url)
    eng = _engines.get(url)
    if eng is None:
        eng = _engines[url] = open_or_explain(url)
    return eng


def writable_engine(url: str) -> Engine:
    """:func:`engine_for`, for a command that writes: a warehouse this process could only open
    for reading (a SELECT-only role, a read-only file, a lock held) stops it before any work,
    with the one line that says why."""
    from flows.warehouse_url import READ_ONLY, normalize, open_error

    eng = engine_for(url)
    key = normalize(url)
    if key not in READ_ONLY and key not in _writable:
        if _pg_read_only(eng):
            READ_ONLY[key] = open_error(url, PermissionError("permission denied: read-only"))
        else:
            _writable.add(key)
    err = READ_ONLY.get(key)
    if err is not None:
        raise err
    return eng


_writable: set[str] = set()


def _pg_read_only(eng: Engine) -> bool:
    """A PostgreSQL role that may not write (SELECT-only grants, a hot standby) opens and
    reads a current schema like any other; ask the server before the first write."""
    if eng.dialect.name != "postgresql":
        return False
    from sqlalchemy import text

    with eng.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "select current_setting('transaction_read_only') = 'on' "
                    "or not has_table_privilege('sync_run', 'INSERT')"
                )
            ).scalar()
        )


def dispose_engines() -> None:
    from flows.warehouse_url import READ_ONLY

    for eng in _engines.values():
        eng.dispose()
    _engines.clear()
    READ_ONLY.clear()
    _writable.clear()


def table_artifact(key: str, table: list[dict[str, Any]], description: str) -> None:
    """A table in the Prefect UI for this flow run; nothing when there is no Prefect run
    (the CLI's in-process runs, ``flows.ops.local``): there is no UI to show it in, and
    creating one would boot a temporary Prefect server."""
    from flows.ops.lazy import run_context

    if run_context() is None:
        return
    from prefect.artifacts import create_table_artifact

    create_table_artifact(key=key, table=table, description=description)
