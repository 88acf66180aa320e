"""Crash consistency: a sync SIGKILLed at random points and rerun ends with exactly the rows
of an uninterrupted run — no duplicates, nothing lost (the cursor commits with its rows)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from warehouse.db import make_engine

WORKER = """
import sys
from tests.support.fakes.fakesource import Config, streams
from flows.engine import run_stream
from flows.workspace import Workspace, Company
from warehouse.db import open_warehouse
url, rows = sys.argv[1], int(sys.argv[2])
ws = Workspace(company=Company(name="t", domains=["kizuna-demo.co.jp"]))
spec = streams("fake", Config(rows=rows, page_size=7, bad_every=13), ws)[0]
engine = open_warehouse(url)
print("ready", flush=True)
run_stream(engine, spec, "run")
print("done", flush=True)
"""

TABLES = {
    "person": "select full_name, primary_email, organization_id is not null from person order by 1,2",
    "person_email": "select email from person_email order by 1",
    "organization": "select name_normalized from organization order by 1",
    "activity": "select key, subject from activity order by 1",
    "activity_participant": "select a.key, p.email, p.role from activity_participant p join activity a on a.id = p.activity_id order by 1,2,3",
    "source_record": "select source_id, entity, deleted_at is null from source_record order by 1,2",
    "quarantine": "select source_id, reason from quarantine order by 1",
    "sync_state": "select connector, stream, cursor from sync_state",
}


def _run(url: str, rows: int, kill_after: float | None, cwd: Path) -> bool:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, str(rows)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    if kill_after is not None:
        time.sleep(kill_after)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return False
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return "done" in out


def _snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    eng = make_engine(url)
    with eng.connect() as conn:
        snap = {name: [tuple(r) for r in conn.execute(text(q))] for name, q in TABLES.items()}
    eng.dispose()
    return snap


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_equals_clean_run(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    rows = 600
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    assert _run(clean, rows, None, root)
    expected = _snapshot(clean)
    assert len(expected["person"]) == rows - rows // 13
    assert len(expected["quarantine"]) == rows // 13

    rng = random.Random(20261127)
    crashed = f"sqlite:///{tmp_path / 'crashed.db'}"
    kills = 0
    for _ in range(6):
        if not _run(crashed, rows, rng.uniform(0.05, 0.6), root):
            kills += 1
    assert _run(crashed, rows, None, root)
    assert kills >= 1, "the worker finished before any kill: raise rows"
    got = _snapshot(crashed)
    for name in TABLES:
        assert got[name] == expected[name], name
