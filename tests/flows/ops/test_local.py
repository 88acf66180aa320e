"""The fast CLI path: flow code run in-process with no Prefect API and no temporary server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from flows.ops import launch, local
from flows.ops.lazy import flow, task
from flows.runtime import engine_for
from kizuna.errors import AuthError, TransientError
from tests.support.fakes import fakesource
from warehouse import schema as t
from warehouse.run_schema import FlowRun

fakesource.register()


@pytest.fixture
def no_prefect_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Booting Prefect's temporary server (or any API call) fails the test."""
    from prefect.server.api import server

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the local path must not start a Prefect server")

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(server.SubprocessASGIServer, "start", refuse)


def _workspace(tmp_path: Path) -> Path:
    ws = {
        "company": {"name": "株式会社テスト", "domains": ["kizuna-demo.co.jp"]},
        "warehouse": {"url": "sqlite:///wh.db"},
        "sources": {
            "people": {"type": "fake", "rows": 60, "page_size": 20, "bad_every": 10},
            "more": {"type": "fake", "rows": 30, "page_size": 20},
        },
    }
    p = tmp_path / "kizuna.yaml"
    p.write_text(yaml.safe_dump(ws, allow_unicode=True), encoding="utf-8")
    return p


def test_sync_runs_here_and_keeps_its_history_in_the_warehouse(
    no_prefect_server: None, tmp_path: Path
) -> None:
    from flows.sync import sync_workspace

    ws_file = _workspace(tmp_path)
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    assert launch.where() == ("local", None)
    first = launch.run_flow(sync_workspace, url, workspace_file=str(ws_file), run_id="r-1")
    assert {r["connector"] for r in first} == {"people", "more"}
    assert sum(r["quarantined"] for r in first) == 6
    again = launch.run_flow(sync_workspace, url, workspace_file=str(ws_file), run_id="r-2")
    assert all(r["inserted"] == r["updated"] == 0 for r in again)
    engine = engine_for(url)
    with engine.connect() as conn:
        runs = conn.execute(select(FlowRun).order_by(FlowRun.started_at)).all()
        streams = conn.execute(select(t.SyncRun.run_id, t.SyncRun.status)).all()
    assert [(r.id, r.flow, r.state) for r in runs] == [
        ("r-1", "kizuna-sync", "completed"),
        ("r-2", "kizuna-sync", "completed"),
    ]
    assert runs[0].parameters["workspace_file"] == str(ws_file) and runs[0].finished_at
    assert sorted(streams) == [("r-1", "completed")] * 2 + [("r-2", "completed")] * 2
    # The in-process path never imported Prefect (a fresh process: see test_no_prefect_import).
    assert not local.lazy.inline_active()


def test_a_failed_run_is_recorded_failed(no_prefect_server: None, tmp_path: Path) -> None:
    @flow(name="kizuna-test-broken")
    def broken(workspace_file: str) -> None:
        raise RuntimeError("source exploded")

    url = f"sqlite:///{tmp_path / 'wh.db'}"
    with pytest.raises(RuntimeError):
        launch.run_flow(broken, url, workspace_file="x")
    with engine_for(url).connect() as conn:
        row = conn.execute(select(FlowRun)).one()
    assert row.state == "failed" and "source exploded" in (row.error or "")


calls: list[str] = []


def _condition(task: Any, run: Any, state: Any) -> bool:
    return isinstance(state.result(raise_on_failure=False), TransientError)


@task(retries=3, retry_delay_seconds=[0, 0, 0], retry_condition_fn=_condition)
def flaky(fail_times: int, error: str) -> str:
    calls.append(error)
    if len(calls) <= fail_times:
        raise TransientError("429") if error == "transient" else AuthError("revoked")
    return "ok"


@flow(name="kizuna-test-tasks")
def uses_tasks(fail_times: int, error: str) -> list[str]:
    futures = [flaky.submit(fail_times, error) for _ in range(1)]
    return [flaky(fail_times, error), *[f.result() for f in futures]]


def test_tasks_keep_their_retry_rules_and_submit_gives_futures(no_prefect_server: None) -> None:
    calls.clear()
    with local.inline():
        assert uses_tasks(2, "transient") == ["ok", "ok"]
    assert len(calls) == 4  # two failures, then two successes
    calls.clear()
    with local.inline(), pytest.raises(AuthError):
        flaky(1, "auth")
    assert calls == ["auth"]  # not retried: only transient errors are


def test_the_cli_sync_path_imports_no_prefect(tmp_path: Path) -> None:
    """The fast path's point: a fresh process that syncs in-process never imports Prefect
    (about a second of CPU)."""
    import os
    import subprocess
    import sys

    ws_file = _workspace(tmp_path)
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    code = (
        "import sys\n"
        "from tests.support.fakes import fakesource\n"
        "fakesource.register()\n"
        "from flows.ops import launch\n"
        "from flows.sync import sync_workspace\n"
        f"launch.run_flow(sync_workspace, {url!r}, "
        f"workspace_file={str(ws_file)!r})\n"
        "assert 'prefect' not in sys.modules, 'prefect imported'\n"
    )  # the real flows workers load: tests/deployments/test_table.py
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
