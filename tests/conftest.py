"""Shared fixtures: a fresh warehouse on SQLite and PostgreSQL, and one Prefect harness.

The quiet Prefect settings are applied at import, before anything imports prefect.
"""

from __future__ import annotations

import os
import shutil
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


def _test_pg_url() -> str:
    """The PostgreSQL test database; under pytest-xdist each worker has its own (the name
    with ``_gw0``, ``_gw1`` … appended, created on first use), so one worker's advisory
    locks, leases and schemas never meet another's."""
    url = os.environ.get(
        "KIZUNA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/kizuna_test"
    )
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


PG_URL = _test_pg_url()
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist the tests marked ``slow`` go first (the order is otherwise kept),
    so no worker starts a minute-long proof when the other has nothing left to do."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite warehouse made once; each test gets a copy (migrating costs ~1 s)."""
    path = tmp_path_factory.mktemp("warehouse-template") / "wh.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    with eng.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    eng.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_schema() -> Iterator[tuple[str, str, list[str]]]:
    """One migrated PostgreSQL schema per session (per xdist worker), emptied before each test
    instead of re-migrated; with its tables in an order that deletes children first."""
    from tests.support.pg_schema import delete_order

    url = pg_url_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    upgrade(eng)
    with eng.connect() as conn:
        order = delete_order(conn, schema)
    eng.dispose()
    yield url, schema, order
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, empty, migrated warehouse on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        target = tmp_path / "wh.db"
        shutil.copyfile(template, target)
        eng = make_engine(f"sqlite:///{target}")
        yield eng
        eng.dispose()
        return
    from tests.support.pg_schema import empty_tables

    url, schema, order = request.getfixturevalue("_pg_schema")
    eng = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    with eng.begin() as conn:
        empty_tables(conn, schema, order)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _process_budgets() -> Iterator[None]:
    """A sync installs warehouse-kept API budgets for the process (flows.budget); each test
    starts without them, so no test draws on another test's warehouse."""
    from connectors.throttle import reset_budgets

    yield
    reset_budgets()


@pytest.fixture(autouse=True)
def _no_terminal_size_env() -> None:
    """CLI output is checked at the width a pipe gets (flows.cli.common.make_console), unless
    a test sets ``COLUMNS`` itself. In a pytest-xdist worker, readline has put ``COLUMNS=80``
    and ``LINES=24`` in the environment by the time tests run; drop them."""
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


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


# Real servers (Dovecot, Radicale) for connector tests; session-wide, see tests/support/servers.py.
pytest.register_assert_rewrite("tests.support.conformance")
from tests.support.servers import dovecot_plain, dovecot_server, radicale_server  # noqa: E402, F401
