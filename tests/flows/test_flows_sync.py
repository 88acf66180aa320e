"""The Prefect sync flow: one task per stream, a run record, transient-only retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from flows.runtime import engine_for
from tests.support.fakes import fakesource
from warehouse import schema as t

fakesource.register()


def _workspace(tmp_path: Path, **source: Any) -> Path:
    ws = {
        "company": {"name": "株式会社テスト", "domains": ["kizuna-demo.co.jp"]},
        "warehouse": {"url": "sqlite:///wh.db"},
        "sources": {
            "people": {"type": "fake", "rows": 60, "page_size": 20, "bad_every": 10, **source}
        },
    }
    p = tmp_path / "kizuna.yaml"
    p.write_text(yaml.safe_dump(ws, allow_unicode=True), encoding="utf-8")
    return p


def test_sync_flow_records_what_it_did_and_rerun_writes_nothing(
    prefect_harness: None, tmp_path: Path
) -> None:
    from flows.sync import sync_workspace

    ws_file = _workspace(tmp_path)
    first = sync_workspace(str(ws_file), None, "run-1")
    assert [r["stream"] for r in first] == ["people"]
    assert first[0]["quarantined"] == 6
    engine = engine_for(f"sqlite:///{tmp_path / 'wh.db'}")
    with engine.connect() as conn:
        run = conn.execute(select(t.table(t.SyncRun)).where(t.SyncRun.run_id == "run-1")).one()
        assert (run.status, run.quarantined) == ("completed", 6)
        assert run.inserted > 0

    # The cursor is at the end: a rerun reads an empty page and writes no rows.
    second = sync_workspace(str(ws_file), None, "run-2")
    assert second[0]["inserted"] == second[0]["updated"] == 0


def test_only_transient_errors_are_retried() -> None:
    from prefect.states import Failed

    from flows.sync import only_transient
    from kizuna.errors import AuthError, TransientError

    assert only_transient(None, None, Failed(data=TransientError("429")))
    assert not only_transient(None, None, Failed(data=AuthError("revoked")))
    assert not only_transient(None, None, Failed(data=ValueError("bug")))


@pytest.mark.parametrize("rows", [0])
def test_empty_source_writes_nothing(prefect_harness: None, tmp_path: Path, rows: int) -> None:
    from flows.sync import sync_workspace

    ws_file = _workspace(tmp_path, rows=rows)
    result = sync_workspace(str(ws_file), None, "run-empty")
    assert result[0]["inserted"] == result[0]["updated"] == result[0]["quarantined"] == 0


def test_retry_waits_what_retry_after_asks_beyond_the_planned_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from prefect.states import Failed

    from flows import sync
    from kizuna.errors import TransientError

    waited: list[float] = []
    monkeypatch.setattr(sync, "_sleep", waited.append)
    run = SimpleNamespace(run_count=1)
    assert sync.only_transient(None, run, Failed(data=TransientError("429", retry_after=30)))
    assert waited == [30 - sync.RETRY_DELAYS[0]]
    # Longer than a retry should wait: leave it to the next scheduled run.
    assert not sync.only_transient(None, run, Failed(data=TransientError("q", retry_after=3600)))


def test_a_stream_another_run_holds_is_waited_for_then_skipped_with_one_line(
    prefect_harness: None, tmp_path: Path
) -> None:
    from flows.sync import sync_workspace
    from warehouse import lease

    ws_file = _workspace(tmp_path)
    engine = engine_for(f"sqlite:///{tmp_path / 'wh.db'}")
    with lease.held(engine, "stream:people/people", run_id="run-elsewhere", what="x"):
        got = sync_workspace(str(ws_file), None, "run-2", lease_wait=0.3)
    assert [r.get("skipped", "") for r in got] == [got[0]["skipped"]]
    line = got[0]["skipped"]
    assert line.startswith("stream people/people is being synced by run run-elsewhere on ")
    assert line.endswith("JST; try again later") and "\n" not in line
    with engine.connect() as conn:  # nothing was written by the run that stood back
        assert conn.execute(select(t.SyncRun.id).where(t.SyncRun.run_id == "run-2")).first() is None
    # Once the holder is done, the next run syncs the stream.
    assert sync_workspace(str(ws_file), None, "run-3")[0]["inserted"] > 0


@pytest.mark.slow
@pytest.mark.postgres
def test_streams_run_at_once_on_postgresql_under_prefect(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the flow submits every stream to Prefect's thread pool: three sources'
    streams are synced at the same time (run intervals overlap), each completely."""
    from flows.sync import sync_workspace
    from tests.conftest import pg_url_or_skip
    from tests.support.pg_schema import engine_in, fresh_schemas

    url = pg_url_or_skip()
    ws = {
        "company": {"name": "株式会社テスト", "domains": ["kizuna-demo.co.jp"]},
        "sources": {
            # Pages that take 20 ms to arrive: streams run at once overlap however busy the
            # machine is (one after the other, no two ever would).
            name: {"type": "fake", "rows": 1500, "page_size": 25, "version": i, "page_delay": 0.02}
            for i, name in enumerate(("a", "b", "c"))
        },
    }
    ws_file = tmp_path / "kizuna.yaml"
    ws_file.write_text(yaml.safe_dump(ws, allow_unicode=True), encoding="utf-8")
    with fresh_schemas(url, 1) as (schema,):
        monkeypatch.setenv("KIZUNA_WAREHOUSE_URL", f"{url}?options=-csearch_path%3D{schema}")
        got = sync_workspace(str(ws_file), None, "run-par", resolve=False)
        engine = engine_in(url, schema)
        try:
            with engine.connect() as conn:
                runs = conn.execute(select(t.table(t.SyncRun))).all()
        finally:
            engine.dispose()
        from flows.runtime import dispose_engines

        dispose_engines()
    assert sorted(r["connector"] for r in got) == ["a", "b", "c"]
    assert all(r["inserted"] > 0 for r in got)
    assert [r.status for r in runs] == ["completed"] * 3
    # Streams start a little apart (each first takes its source's concurrency slot on the
    # server), but they run side by side: serially no two intervals would intersect.
    pairs = [(a, b) for i, a in enumerate(runs) for b in runs[i + 1 :]]
    assert any(a.started_at < b.finished_at and b.started_at < a.finished_at for a, b in pairs)
