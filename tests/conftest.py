"""Shared fixtures: a fresh warehouse on SQLite and PostgreSQL, and one Prefect harness.

The quiet Prefect settings are applied at import, before anything imports prefect.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="kizuna-prefect-"))
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ.pop("PREFECT_API_URL", None)
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")

from flows.runtime import quiet_prefect  # noqa: E402

quiet_prefect()

from sqlalchemy import Engine, create_engine, text  # noqa: E402

from warehouse.db import make_engine, upgrade  # noqa: E402

PG_URL = os.environ.get(
    "KIZUNA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/kizuna_test"
)
REQUIRE_PG = os.environ.get("KIZUNA_REQUIRE_PG") == "1"


def _pg_available() -> bool:
    """Reach the test database, creating it on a server that does not have it yet."""
    from sqlalchemy.engine import make_url

    for attempt in range(2):
        try:
            eng = create_engine(PG_URL)
            with eng.connect() as conn:
                conn.execute(text("select 1"))
            eng.dispose()
            return True
        except Exception:
            if attempt:
                return False
            url = make_url(PG_URL)
            try:
                admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{url.database}"'))
                admin.dispose()
            except Exception:
                return False
    return False


_PG_OK: bool | None = None


def pg_url_or_skip() -> str:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _pg_available()
    if not _PG_OK:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL test database not reachable at {PG_URL}")
        pytest.skip("PostgreSQL not reachable (set KIZUNA_TEST_PG_URL)")
    return PG_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A freshly migrated warehouse; on PostgreSQL each test gets its own schema."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'wh.db'}")
        upgrade(eng)
        yield eng
        eng.dispose()
        return
    url = pg_url_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    upgrade(eng)
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One ephemeral Prefect API for the whole session (starting one costs 6–13 s)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield

# Real servers (Dovecot, Radicale) for connector tests; session-wide, see tests/servers.py.
pytest.register_assert_rewrite("tests.conformance")
from tests.servers import dovecot_plain, dovecot_server, radicale_server  # noqa: E402, F401
