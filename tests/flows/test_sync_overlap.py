"""Syncs that collide: two, then four, `kizuna sync` processes of the demo workspace started
at once (forked from one warmed-up CLI, tests/support/cli_forker.py) on one fresh PostgreSQL
warehouse (the same sources, and different ones), each with
its streams running in parallel. Every run ends green (a run that found a stream or the
identity resolution held waited for it), the runs really overlapped (their ``sync_run``
intervals intersect, across runs and inside one run, while no stream was ever synced by two
runs at once), and every table equals a serial run's in every column except surrogate ids
and bookkeeping timestamps."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from flows.demo.generate import generate
from tests.conftest import pg_url_or_skip
from tests.support.cli_forker import Forker, Run
from tests.support.pg_schema import engine_in, fresh_schemas
from tests.support.snapshot import differences, snapshot
from warehouse.schema import SyncRun

ROOT = Path(__file__).resolve().parents[2]


def _wh(url: str, schema: str) -> dict[str, str]:
    return {"KIZUNA_WAREHOUSE_URL": f"{url}?options=-csearch_path%3D{schema}"}


def _all_green(runs: list[Run]) -> list[str]:
    outs = []
    for r in runs:
        code, out = r.wait(600), r.text()
        assert code == 0, out[-3000:]
        for bad in ("database is locked", "Traceback", "UniqueViolation", "failed"):
            assert bad not in out, out[-3000:]
        outs.append(out)
    return outs


def _syncs(
    cli: Forker, tmp: Path, ws_file: Path, wh: dict[str, str], groups: list[str | None]
) -> list[str]:
    """Start one `kizuna sync [SOURCE]` per group at the same moment; all must end green."""
    runs = []
    for i, g in enumerate(groups):
        args = ["sync", "-w", str(ws_file), *([g] if g else [])]
        out = tmp / f"sync-{wh['KIZUNA_WAREHOUSE_URL'][-12:]}-{i}.log"
        runs.append(Run(out, None, cli.start(args, out, wh)))
    return _all_green(runs)


def _runs(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(SyncRun.__table__)).all()
    return [
        {
            "run": r.run_id,
            "stream": f"{r.connector}/{r.stream}",
            "start": r.started_at,
            "end": r.finished_at,
            "status": r.status,
            "work": r.inserted + r.updated,
        }
        for r in rows
    ]


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["start"] < b["end"] and b["start"] < a["end"])


def _assert_overlapped(runs: list[dict[str, Any]], n: int) -> None:
    """``n`` runs, whose streams ran at the same time as other runs' and as each other's,
    while the stream lease kept any one stream to one run at a time."""
    assert len({r["run"] for r in runs}) == n, runs
    assert all(r["status"] == "completed" for r in runs), runs
    pairs = list(itertools.combinations(runs, 2))
    across = [(a, b) for a, b in pairs if a["run"] != b["run"] and _overlap(a, b)]
    assert any(a["work"] or b["work"] for a, b in across), "no run wrote while another ran"
    inside = [(a, b) for a, b in pairs if a["run"] == b["run"] and _overlap(a, b)]
    assert inside, "no run synced two streams at once"
    same = [(a, b) for a, b in pairs if a["stream"] == b["stream"] and _overlap(a, b)]
    assert not same, same


def _resolve_full(cli: Forker, tmp: Path, ws_file: Path, whs: list[dict[str, str]]) -> None:
    args = ["identity", "resolve", "--full", "-w", str(ws_file)]
    outs = [tmp / f"resolve-{i}.log" for i in range(len(whs))]
    _all_green([Run(o, None, cli.start(args, o, wh)) for o, wh in zip(outs, whs, strict=True)])


def _not_identity(snap: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snap.items() if not k.startswith("identity_")}


@pytest.mark.slow
@pytest.mark.postgres
def test_two_then_four_concurrent_syncs_equal_a_serial_run(tmp_path: Path) -> None:
    """Identity resolution is incremental: merges found in increments are kept until a full
    run (``warehouse.identity.resolve``), and concurrent runs resolve in other increments than
    one serial run. So the synced data is compared as the runs left it, and the resolver's
    tables after one full resolution of each warehouse."""
    url = pg_url_or_skip()
    ws_file = generate(tmp_path / "demo", messages=120, seed=5)
    env = {**os.environ}
    env.pop("PREFECT_API_URL", None)  # in-process runs, as the CLI does without a server
    cli = Forker(env, ROOT)
    with fresh_schemas(url, 3) as schemas:
        serial, two, four = (_wh(url, s) for s in schemas)
        try:
            _syncs(cli, tmp_path, ws_file, serial, [None])
            two_out = _syncs(cli, tmp_path, ws_file, two, [None, None])  # the same sources
            four_out = _syncs(cli, tmp_path, ws_file, four, [None, "customers", "mail", None])
            engines = [engine_in(url, s) for s in schemas]
            try:
                synced = [snapshot(e) for e in engines]
                runs2, runs4 = _runs(engines[1]), _runs(engines[2])
                _resolve_full(cli, tmp_path, ws_file, [serial, two, four])
                base, got2, got4 = (snapshot(e) for e in engines)
            finally:
                for e in engines:
                    e.dispose()
        finally:
            cli.stop()
    assert sum(base["person"].values()) > 30 and sum(base["activity"].values()) > 80
    for got in synced:  # the runs resolved what they synced
        assert sum(got["identity_member"].values()) > 30
    assert not differences(*map(_not_identity, synced[:2]))
    assert not differences(*map(_not_identity, synced[::2]))
    # identity_alias is history (cluster ids merged by increments keep resolving): runs that
    # resolved in other increments keep other aliases; every other table must be equal.
    base, got2, got4 = (
        {k: v for k, v in x.items() if k != "identity_alias"} for x in (base, got2, got4)
    )
    assert not differences(base, got2), differences(base, got2)
    assert not differences(base, got4), differences(base, got4)
    _assert_overlapped(runs2, 2)
    _assert_overlapped(runs4, 4)
    # A run that found a stream held said so and waited, then went on: still green.
    assert any("waiting: stream" in o for o in two_out + four_out), two_out + four_out
