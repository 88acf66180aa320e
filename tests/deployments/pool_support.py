"""The README's "Past one machine" on one machine, for ``test_pool.py`` and
``bench/bench_cli.py --scale-out``: databases, a workspace with real work per source, a
PostgreSQL-backed Prefect server, the pool, the deployments, workers, and `sync-all` runs.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from flows.ops import server

ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = "deployments/prefect.yaml"
SOURCES = ["fukuoka", "nagoya", "osaka", "tokyo"]
ROWS = 20_000
"""Deals per branch export: a sync-source run of one (3–5 s of sync on the reference
machine) outlasts the run's own start-up (2.5–3 s)."""
CONTACT_EVERY = 200
"""One deal in this many names its contact; the 120 contacts are shared between branches,
so identities are resolved across sources (and stay a second of work, not the run's bulk)."""
QUERY_SECONDS = "1"
WORKER_LIMIT = "3"


@contextmanager
def pool_databases(base_url: str, names: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """A Prefect database (with pg_trgm) and one warehouse per name, dropped afterwards."""
    base = make_url(base_url)
    tag = uuid.uuid4().hex[:8]
    made = {"prefect": f"kizuna_prefect_test_{tag}"}
    made.update({n: f"kizuna_pool_{n}_{tag}" for n in names})
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in made.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    trgm = create_engine(base.set(database=made["prefect"]), isolation_level="AUTOCOMMIT")
    with trgm.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    trgm.dispose()
    urls = {k: base.set(database=v).render_as_string(hide_password=False) for k, v in made.items()}
    prefect = base.set(drivername="postgresql+asyncpg", database=made["prefect"])
    urls["prefect"] = prefect.render_as_string(hide_password=False)
    try:
        yield urls
    finally:
        with admin.connect() as conn:
            for name in made.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def write_workspace(directory: Path, rows: int = ROWS) -> Path:
    """Four branches' deal exports (UTF-8 CSV) and the workspace naming them."""
    directory.mkdir(parents=True, exist_ok=True)
    contacts = [f"contact{n:03d}@customer{n % 40:02d}.co.jp" for n in range(120)]
    stages = ["リード", "提案", "見積", "受注", "失注"]
    sources: dict[str, Any] = {}
    for branch in SOURCES:
        rng = random.Random(branch)
        with (directory / f"{branch}.csv").open("w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["案件ID", "案件名", "担当者メール", "フェーズ", "金額", "受注予定日"])
            for i in range(rows):
                out.writerow(
                    [
                        f"{branch}-{i:06d}",
                        f"{branch} 案件 {i}",
                        rng.choice(contacts) if i % CONTACT_EVERY == 0 else "",
                        rng.choice(stages),
                        str(rng.randrange(10, 5000) * 1000),
                        (date(2026, 1, 1) + timedelta(days=rng.randrange(365))).isoformat(),
                    ]
                )
        sources[branch] = {
            "type": "spreadsheet",
            "path": f"{branch}.csv",
            "key": "案件ID",
            "columns": {"担当者メール": "person.email"},
        }
    ws = {
        "version": 1,
        "company": {"name": "株式会社キズナ検証", "time_zone": "Asia/Tokyo"},
        "warehouse": {"url": "sqlite:///unused.db"},  # the Secret block's URL wins on workers
        "sources": sources,
        # Golden fields by `most_recent` follow the order runs started, which differs by
        # design between one worker and two; rank by the data alone to compare field by field.
        "identity": {"survivorship": {"rules": ["source_priority", "most_complete"]}},
    }
    path = directory / "kizuna.yaml"
    path.write_text(yaml.safe_dump(ws, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Pool:
    api: str
    env: dict[str, str]
    workers: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def log(self, index: int) -> str:
        return self.workers[index][1].read_text()


@contextmanager
def pool(tmp: Path, prefect_db_url: str, ws_file: Path, names: tuple[str, ...]) -> Iterator[Pool]:
    """Steps 1, 3 and 4 of the README: the server on PostgreSQL (its scheduler off: a cron
    run must not land in a measurement), the pool, `prefect deploy --all`, and one worker
    per name, online before this yields. Everything is stopped afterwards."""
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KIZUNA_"))}
    # Kizuna's environment active, as on a worker host: `prefect` and `kizuna-engine` on PATH.
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    log = tmp / "cli.log"
    with server.started(tmp / "server", 0, prefect_db_url, scheduler=False) as api:
        env.update(PREFECT_API_URL=api, PREFECT_HOME=str(tmp / "client"))
        cli(["prefect", "work-pool", "create", "kizuna", "--type", "process"], env, log)
        made = Pool(api, env, [start_worker(n, env, ws_file, tmp) for n in names])
        try:
            cli(
                ["prefect", "--no-prompt", "deploy", "--all", "--prefect-file", PREFECT_FILE],
                env,
                log,
            )
            wait_workers(api, len(names))
            yield made
        finally:
            stop_workers(made.workers)


def cli(args: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("ab") as fh:
        subprocess.run(args, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, check=True)


def start_worker(
    name: str, env: dict[str, str], ws_file: Path, tmp: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """`KIZUNA_WORKSPACE=… PREFECT_WORKER_QUERY_SECONDS=1 prefect worker start --pool kizuna
    --limit 3`, as the README's step 4 has it."""
    out = tmp / f"worker-{name}.log"
    wenv = {
        **env,
        "KIZUNA_WORKSPACE": str(ws_file),  # the worker's own copy of the workspace
        "PREFECT_WORKER_QUERY_SECONDS": QUERY_SECONDS,
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_HOME": str(tmp / name),
    }
    cmd = ["prefect", "worker", "start", "--pool", "kizuna", "--limit", WORKER_LIMIT]
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            [*cmd, "--name", name], env=wenv, cwd=tmp, stdout=fh, stderr=subprocess.STDOUT
        )
    return proc, out


def stop_workers(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    """SIGTERM, which a worker turns into its own graceful stop; killed if it does not stop
    (started from a shell's background job, a worker inherits SIGINT ignored)."""
    for proc, _ in workers:
        proc.terminate()
    for proc, _ in workers:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_workers(api: str, count: int, timeout: float = 60) -> None:
    """Until ``count`` workers of the pool have said they are online (a run created before
    a worker's first poll would only measure that worker's start-up)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + timeout
    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as c:
        while len(c.read_workers_for_work_pool("kizuna")) < count:
            assert time.monotonic() < deadline, "the workers did not come online"
            time.sleep(0.2)


def sync_all(
    api: str, warehouse_url: str, pool_limit: int | None
) -> tuple[float, list[dict[str, Any]]]:
    """Step 2 (the Secret block names ``warehouse_url``), the pool's limit set, then one
    `sync-all` run to its end: its wall time and its sync-source runs."""
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        Secret(value=warehouse_url).save("kizuna-warehouse-url", overwrite=True)
        with get_client(sync_client=True) as client:
            client.update_work_pool("kizuna", WorkPoolUpdate(concurrency_limit=pool_limit))
        t0 = time.monotonic()
        run: Any = run_deployment("kizuna-sync-fanout/sync-all", timeout=0)
        state = wait(run.id)
        wall = time.monotonic() - t0
        runs = children(run.id)
    assert state == "COMPLETED", (state, runs)
    return wall, runs


def wait(run_id: uuid.UUID, timeout: float = 300) -> str:
    """The run's final state type (polled; under the caller's PREFECT_API_URL)."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as c:
        while True:
            s = c.read_flow_run(run_id).state
            if (s is not None and s.is_final()) or time.monotonic() > deadline:
                return s.type.value if s else "NONE"
            time.sleep(0.5)


def children(parent: uuid.UUID) -> list[dict[str, Any]]:
    """The sync-source runs one sync-all started: sources, final state, start and end."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as c:
        found = c.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])
            )
        )
    return [
        {
            "id": str(r.id),
            "sources": r.parameters.get("sources"),
            "state": r.state.type.value if r.state else "NONE",
            "start": r.start_time.timestamp() if r.start_time else 0.0,
            "end": r.end_time.timestamp() if r.end_time else 0.0,
        }
        for r in found
        if r.deployment_id is not None  # not the resolve subflow
    ]


def limits(api: str) -> dict[str, tuple[int, int]]:
    """Every global concurrency limit on the server: name → (limit, active slots)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as c:
        return {g.name: (g.limit, g.active_slots) for g in c.read_global_concurrency_limits(200)}


def ran(worker_log: str, run_id: str) -> bool:
    """The worker took the run: it submitted it and the server did not abort the submission
    (two workers may both try a run; only one gets it to Pending)."""
    return (
        f"submitting flow run '{run_id}'" in worker_log
        and f"Aborted submission of flow run '{run_id}'" not in worker_log
    )
