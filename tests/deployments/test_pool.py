"""README "Past one machine", followed literally: a PostgreSQL-backed Prefect server, a process
pool, `prefect deploy --all` from the generated prefect.yaml, two workers, and the scheduled
`sync-all` that starts one `sync-source` run per source of one workspace.

Checks that (a) both workers executed sync-source runs, (b) runs on the two workers overlapped
in time (the second worker adds capacity; wall times are printed, not asserted: on a shared
2-core machine they measure the machine's load), (c) every table, identities included, equals
one serial `kizuna sync` of the same workspace.
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
import yaml
from sqlalchemy import DateTime, Engine, create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from flows.ops import server
from tests.conftest import pg_url_or_skip

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["customers", "deals", "mail", "calendar", "deal_lines"]
# Run history, leases, cursors and the resolver's run statistics differ by when and where
# things ran; everything a person or a campaign reads is compared.
BOOKKEEPING = {
    "alembic_version",
    "sync_run",
    "flow_run",
    "lease",
    "sync_state",
    "quarantine",
    "identity_state",
}


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
def test_two_workers_share_a_workspace_and_equal_a_serial_run(
    tmp_path: Path, databases: dict[str, str]
) -> None:
    from flows.demo.generate import generate

    ws_file = generate(tmp_path / "demo", messages=300, seed=5)
    # Golden fields by `most_recent` follow the order stream runs started, which differs by
    # design between one process and two workers; rank by the data alone so the two runs
    # can be compared field by field.
    data = yaml.safe_load(ws_file.read_text(encoding="utf-8"))
    identity = data.setdefault("identity", {}) or {}
    data["identity"] = identity
    identity["survivorship"] = {"rules": ["source_priority", "most_complete"]}
    ws_file.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KIZUNA_"))}
    bin_dir = Path(sys.executable).parent
    log = tmp_path / "cli.log"
    # The serial run: one `kizuna sync` of every source in one process, into its own warehouse.
    t0 = time.monotonic()
    _cli(
        [str(bin_dir / "kizuna"), "sync", "-w", str(ws_file)],
        {**base_env, "KIZUNA_WAREHOUSE_URL": databases["serial"]},
        log,
    )
    serial = time.monotonic() - t0
    with server.started(tmp_path / "server", 0, databases["prefect"]) as api:
        env = {**base_env, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "client")}
        # The README's steps, as written there.
        prefect = str(bin_dir / "prefect")
        _cli([prefect, "work-pool", "create", "kizuna", "--type", "process"], env, log)
        _cli(
            [
                prefect,
                "--no-prompt",
                "deploy",
                "--all",
                "--prefect-file",
                "deployments/prefect.yaml",
            ],
            env,
            log,
        )
        _save_secret(api, databases["parallel"])
        workers = [_worker(name, env, ws_file, tmp_path) for name in ("w1", "w2")]
        try:
            t0 = time.monotonic()
            fanout = _trigger(api, "kizuna-sync-fanout/sync-all")
            state = _wait(api, [fanout])
            parallel = time.monotonic() - t0
            runs = _children(api)
            gcls = _limits(api)
        finally:
            for proc, _ in workers:
                proc.terminate()
            for proc, _ in workers:
                proc.wait(timeout=30)
    assert state == ["COMPLETED"], (log.read_text()[-3000:], _logs(tmp_path))
    assert sorted(r["sources"] for r in runs) == [[s] for s in sorted(SOURCES)]
    assert all(r["state"] == "COMPLETED" for r in runs), runs
    # (a) both workers executed sync-source runs of this one workspace
    texts = {name: path.read_text() for (_, path), name in zip(workers, ("w1", "w2"), strict=True)}
    on = {name: [r for r in runs if _ran(text, r["id"])] for name, text in texts.items()}
    assert sum(len(v) for v in on.values()) == len(runs), on  # each run on exactly one worker
    assert all(on.values()), f"a worker ran nothing: { {k: len(v) for k, v in on.items()} }"
    # (b) at the same time: a run on w1 overlapped a run on w2
    assert any(
        a["start"] < b["end"] and b["start"] < a["end"] for a in on["w1"] for b in on["w2"]
    ), runs
    busy = sum(r["end"] - r["start"] for r in runs)
    span = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    print(  # not asserted: on this shared machine flow-run start-up decides these
        f"\nserial `kizuna sync` {serial:.1f} s; sync-all on two workers {parallel:.1f} s wall "
        f"(sync-source runs: {busy:.1f} s of run time in total, first start to last end "
        f"{span:.1f} s); runs per worker "
        f"{ {k: sorted(r['sources'][0] for r in v) for k, v in on.items()} }"
    )
    # one Prefect global concurrency limit per source (API account), made by the first run
    # and free again once every stream is done
    mine = {n: v for n, v in gcls.items() if n.startswith("kizuna-")}
    assert sorted(n.split("-")[1] for n in mine) == sorted(SOURCES), gcls
    assert all(v == (2, 0) for v in mine.values()), mine
    # (c) every table equals the serial run's
    a = create_engine(databases["serial"])
    b = create_engine(databases["parallel"])
    try:
        want, got = _contents(a), _contents(b)
    finally:
        a.dispose()
        b.dispose()
    assert want.keys() == got.keys()
    differ = {
        name: (
            list((want[name] - got[name]).items())[:3],
            list((got[name] - want[name]).items())[:3],
        )
        for name in want
        if want[name] != got[name]
    }
    assert not differ, differ


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
        [*cmd, "--name", name, "--limit", "2"],
        env=wenv,
        cwd=tmp,
        stdout=fh,
        stderr=subprocess.STDOUT,
    )
    return proc, out


def _logs(tmp: Path) -> str:
    return "\n".join(p.read_text()[-2000:] for p in sorted(tmp.glob("worker-*.log")))


def _save_secret(api: str, warehouse_url: str) -> None:
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        Secret(value=warehouse_url).save("kizuna-warehouse-url", overwrite=True)


def _trigger(api: str, deployment: str) -> uuid.UUID:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        run: Any = run_deployment(deployment, timeout=0)
    return uuid.UUID(str(run.id))


def _children(api: str) -> list[dict[str, Any]]:
    """The sync-source runs: sources, final state, start and end (seconds since the epoch)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as c:
        found = c.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["sync-source"]))
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
    ]


def _limits(api: str) -> dict[str, tuple[int, int]]:
    """Every global concurrency limit on the server: name → (limit, active slots)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as c:
        return {g.name: (g.limit, g.active_slots) for g in c.read_global_concurrency_limits()}


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


def _ran(worker_log: str, run_id: str) -> bool:
    """The worker took the run: it submitted it and the server did not abort the submission
    (two workers may both try a run; only one gets it to Pending)."""
    return (
        f"submitting flow run '{run_id}'" in worker_log
        and f"Aborted submission of flow run '{run_id}'" not in worker_log
    )


def _plain(value: Any) -> Any:
    """A value without surrogate ids (JSON too: a golden field names its record's id)."""
    if isinstance(value, dict):
        return tuple(
            sorted((k, _plain(v)) for k, v in value.items() if k != "id" and not k.endswith("_id"))
        )
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return str(value)


def _contents(engine: Engine) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every table's rows without surrogate ids, foreign ids and times (the two runs happened
    at different moments)."""
    out: dict[str, Counter[tuple[Any, ...]]] = {}
    insp = inspect(engine)
    with engine.connect() as conn:
        for name in insp.get_table_names():
            if name in BOOKKEEPING:
                continue
            cols = [
                c["name"]
                for c in insp.get_columns(name)
                if c["name"] != "id"
                and not c["name"].endswith(("_id", "_at"))
                and not isinstance(c["type"], DateTime)
            ]
            if not cols:
                continue
            rows = conn.execute(
                select(*[text(f'"{c}"') for c in cols]).select_from(text(f'"{name}"'))
            )
            out[name] = Counter(tuple(_plain(v) for v in r) for r in rows)
    return out
