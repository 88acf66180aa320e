"""README "Past one machine", followed literally: a PostgreSQL-backed Prefect server, a process
pool, `prefect deploy --all` from the generated prefect.yaml, two workers sharing four sources.

Checks that (a) both workers ran flow runs, (b) four runs at once finish sooner than the same
four one after another, (c) every table equals the serial run's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from flows.ops import server
from tests.conftest import pg_url_or_skip

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["customers", "deals", "mail", "calendar"]
BOOKKEEPING = {"alembic_version", "sync_run", "flow_run", "lease", "sync_state", "quarantine"}


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """A Prefect database (with pg_trgm) and two warehouses, made for this test and dropped."""
    base = make_url(pg_url_or_skip())
    tag = uuid.uuid4().hex[:8]
    names = {
        "prefect": f"kizuna_prefect_test_{tag}",
        "serial": f"kizuna_pool_serial_{tag}",
        "parallel": f"kizuna_pool_parallel_{tag}",
    }
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    trgm = create_engine(base.set(database=names["prefect"]), isolation_level="AUTOCOMMIT")
    with trgm.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    trgm.dispose()
    prefect_url = base.set(drivername="postgresql+asyncpg", database=names["prefect"])
    urls = {k: base.set(database=v).render_as_string(hide_password=False) for k, v in names.items()}
    urls["prefect"] = prefect_url.render_as_string(hide_password=False)
    yield urls
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _cli(args: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("ab") as fh:
        subprocess.run(args, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, check=True)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_share_four_sources_and_equal_a_serial_run(
    tmp_path: Path, databases: dict[str, str]
) -> None:
    from flows.demo.generate import generate

    ws_file = generate(tmp_path / "demo", messages=1500, seed=5)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KIZUNA_"))}
    bin_dir = Path(sys.executable).parent
    log = tmp_path / "cli.log"
    with server.started(tmp_path / "server", 0, databases["prefect"]) as api:
        env = {**base_env, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "client")}
        # The README's steps, as written there.
        _cli([str(bin_dir / "prefect"), "work-pool", "create", "kizuna", "--type", "process"], env, log)
        _cli(
            [str(bin_dir / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file",
             "deployments/prefect.yaml"],
            env,
            log,
        )
        _save_secret(api, databases["parallel"])
        workers = [_worker(name, env, ws_file, tmp_path) for name in ("w1", "w2")]
        try:
            serial_started = time.monotonic()
            serial_ids = []
            for source in SOURCES:  # one after another, into their own warehouse
                ids = _trigger(api, [source], {"KIZUNA_WAREHOUSE_URL": databases["serial"]})
                assert _wait(api, ids) == ["COMPLETED"], (log.read_text(), _logs(tmp_path))
                serial_ids += ids
            serial = time.monotonic() - serial_started

            parallel_started = time.monotonic()
            ids = [_trigger(api, [s], {})[0] for s in SOURCES]  # the Secret block's warehouse
            states = _wait(api, ids)
            parallel = time.monotonic() - parallel_started
        finally:
            for proc, _ in workers:
                proc.terminate()
            for proc, _ in workers:
                proc.wait(timeout=30)
    assert states == ["COMPLETED"] * 4, _logs(tmp_path)
    ran = {name: sum(str(i) in path.read_text() for i in ids) for (_, path), name in zip(workers, ("w1", "w2"), strict=True)}
    assert all(ran.values()), f"a worker ran nothing: {ran}"
    assert parallel < serial, f"4 at once took {parallel:.1f} s, one after another {serial:.1f} s"
    print(f"\nserial {serial:.1f} s, two workers {parallel:.1f} s, runs per worker {ran}")
    a = create_engine(databases["serial"])
    b = create_engine(databases["parallel"])
    try:
        assert _contents(a) == _contents(b)
    finally:
        a.dispose()
        b.dispose()


def _worker(name: str, env: dict[str, str], ws_file: Path, tmp: Path) -> tuple[Any, Path]:
    out = tmp / f"worker-{name}.log"
    wenv = {
        **env,
        "KIZUNA_WORKSPACE": str(ws_file),  # the worker's own copy of the workspace
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_HOME": str(tmp / name),
    }
    cmd = [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool", "kizuna"]
    fh = out.open("wb")
    proc = subprocess.Popen(
        [*cmd, "--name", name, "--limit", "2"], env=wenv, cwd=tmp, stdout=fh, stderr=subprocess.STDOUT
    )
    return proc, out


def _logs(tmp: Path) -> str:
    return "\n".join(p.read_text()[-2000:] for p in sorted(tmp.glob("worker-*.log")))


def _save_secret(api: str, warehouse_url: str) -> None:
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        Secret(value=warehouse_url).save("kizuna-warehouse-url", overwrite=True)


def _trigger(api: str, sources: list[str], env: dict[str, str]) -> list[uuid.UUID]:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        run: Any = run_deployment(
            "kizuna-sync/sync-source",
            parameters={"sources": sources},
            job_variables={"env": env} if env else None,
            timeout=0,
        )
    return [run.id]


def _wait(api: str, ids: list[uuid.UUID], timeout: float = 240) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + timeout
    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as c:
        while True:
            states = [c.read_flow_run(i).state for i in ids]
            if all(s is not None and s.is_final() for s in states) or time.monotonic() > deadline:
                return [s.type.value if s else "NONE" for s in states]
            time.sleep(0.5)


def _contents(engine: Engine) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every table's rows without surrogate ids, foreign ids and timestamps."""
    out: dict[str, Counter[tuple[Any, ...]]] = {}
    insp = inspect(engine)
    with engine.connect() as conn:
        for name in insp.get_table_names():
            if name in BOOKKEEPING:
                continue
            cols = [
                c["name"]
                for c in insp.get_columns(name)
                if c["name"] != "id" and not c["name"].endswith(("_id", "_at"))
            ]
            if not cols:
                continue
            rows = conn.execute(select(*[text(f'"{c}"') for c in cols]).select_from(text(f'"{name}"')))
            out[name] = Counter(tuple(str(v) for v in r) for r in rows)
    return out
