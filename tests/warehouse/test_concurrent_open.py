"""Several processes opening one fresh warehouse at the same moment all succeed.

Without the migration lock, PostgreSQL failed the second opener with ``UniqueViolation`` on
``pg_type`` (both created the same table) and SQLite with ``table … already exists``.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import pg_url_or_skip

OPENER = """
import sys, time
from warehouse.db import make_engine, upgrade
url, schema, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
extra = {"connect_args": {"options": f"-csearch_path={schema}"}} if schema else {}
engine = make_engine(url, **extra)
time.sleep(max(0.0, start - time.time()))  # every opener starts at the same instant
upgrade(engine)
print("opened", flush=True)
"""

ROOT = Path(__file__).resolve().parents[2]


def _open_at_once(url: str, schema: str, n: int) -> list[subprocess.CompletedProcess[str]]:
    import time

    start = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, url, schema, str(start)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


@pytest.mark.postgres
def test_concurrent_first_opens_of_a_fresh_postgres_warehouse_all_succeed() -> None:
    url = pg_url_or_skip()
    schema = f"open_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        results = _open_at_once(url, schema, 3)
        for r in results:
            assert r.returncode == 0 and r.stdout.strip() == "opened", r.stderr[-2000:]
        with admin.connect() as conn:
            tables = inspect(conn).get_table_names(schema=schema)
        assert {"lease", "person", "delivery", "alembic_version"} <= set(tables)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_concurrent_first_opens_of_a_fresh_sqlite_warehouse_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    for r in _open_at_once(url, "", 3):
        assert r.returncode == 0 and r.stdout.strip() == "opened", r.stderr[-2000:]


def test_the_switch_to_wal_waits_for_a_moment_s_lock_and_other_errors_still_fail() -> None:
    """Switching to WAL may answer "database is locked" at once, without the busy timeout:
    a process opening a file another is setting up must retry, not die."""
    import sqlite3

    from warehouse.db import _wal

    class Cursor:
        def __init__(self, errors: list[str]) -> None:
            self.errors, self.calls = errors, 0

        def execute(self, sql: str) -> None:
            self.calls += 1
            if self.errors:
                raise sqlite3.OperationalError(self.errors.pop(0))

    locked = Cursor(["database is locked", "database is locked"])
    _wal(locked)
    assert locked.calls == 3
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _wal(Cursor(["disk I/O error"]))
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _wal(Cursor(["database is locked"] * 1000), timeout=0.12)
