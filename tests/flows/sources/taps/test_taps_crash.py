"""Crash consistency for Singer taps and dlt sources: a sync SIGKILLed between two committed
pages, twice, then rerun, ends with exactly the warehouse of an uninterrupted run (every
column of every table, tests/support/snapshot.py), bad records quarantined once, on SQLite
and PostgreSQL.

It cannot pass by accident: each kill lands right after the child reported its Nth committed
page (N drawn per trial), the child never reported the end of its run, and its run record is
left ``running`` — the kill stopped a live sync in the middle of its work. A Singer rerun
resumes from the STATE committed with the last page; a dlt rerun from the state the crashed
run started from (dlt's state is committed with a run's last page), the upsert absorbing the
repeats. The children are forked from one warmed-up process (crash_worker.py) so dlt is
imported once per module, not per kill.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from flows.config import load
from flows.engine import run_stream
from flows.sources import registry
from tests.flows.cli.support import url_of
from tests.flows.sources.taps.support import (
    TAP_SECRET,
    dlt_section,
    people,
    require_dlt,
    singer_section,
    write_lines,
    write_workspace,
)
from tests.support.snapshot import differences, snapshot
from warehouse.migrations.env_models import metadata

require_dlt()

ROOT = Path(__file__).resolve().parents[4]
ROWS = 24  # 12 pages of 2; each kill stops after at most 4 of them
BAD_EVERY, KEYLESS_AT = 7, 11


@pytest.fixture(scope="module")
def forker() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.flows.sources.taps.crash_worker"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()  # it holds nothing: its children are done (interpreter exit with dlt is slow)
    proc.communicate()


def _gone(pid: int) -> None:
    for _ in range(500):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    pytest.fail(f"the killed child {pid} is still there")


def _kill_mid_run(
    forker: subprocess.Popen[str], req: dict[str, Any], after: int, engine: Engine
) -> None:
    """Start a sync in a forked child and SIGKILL it right after its ``after``-th commit."""
    fifo = Path(req["fifo"])
    os.mkfifo(fifo)
    assert forker.stdin is not None and forker.stdout is not None
    forker.stdin.write(json.dumps(req) + "\n")
    forker.stdin.flush()
    pid = int(json.loads(forker.stdout.readline())["pid"])
    pages = 0
    with fifo.open(encoding="utf-8") as fh:
        for line in fh:
            assert line == "page\n", f"the run ended before the kill: {line}"
            pages += 1
            if pages == after:
                os.kill(pid, signal.SIGKILL)
                break
        rest = fh.read()  # whatever it wrote before the signal landed, then EOF
    _gone(pid)
    assert pages == after and "done" not in rest and "error" not in rest, rest
    with engine.connect() as conn:
        status = conn.execute(
            text("select status from sync_run where run_id = :r"), {"r": req["run"]}
        ).scalar_one()
    assert status == "running"  # killed mid-run: it never recorded an end


def _wipe(engine: Engine) -> None:
    tables = [t for t in metadata().sorted_tables if t.name != "alembic_version"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for t in reversed(tables):
                conn.execute(t.delete())


def _crash_equals_clean(
    engine: Engine, forker: subprocess.Popen[str], tmp_path: Path, ws: Path, name: str
) -> None:
    run_stream(engine, registry.streams(load(ws), name)[0], "clean")
    expected = snapshot(engine)
    assert sum(expected["quarantine"].values()) == ROWS // BAD_EVERY + 1  # + the keyless one
    assert sum(expected["source_record"].values()) > ROWS
    _wipe(engine)

    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    env = {k: v for k, v in os.environ.items() if k.startswith("KIZUNA_TEST_")}
    for n in range(2):
        req = {
            "workspace": str(ws),
            "source": name,
            "url": url_of(engine),
            "run": f"crash-{n}",
            "fifo": str(tmp_path / f"crash-{n}.fifo"),
            "env": env,
        }
        _kill_mid_run(forker, req, rng.randint(1, 4), engine)
    with engine.connect() as conn:
        landed = conn.execute(text("select count(*) from source_record")).scalar_one()
    assert landed > 0  # the killed runs' committed pages are there
    run_stream(engine, registry.streams(load(ws), name)[0], "rerun")
    got = snapshot(engine)
    assert not differences(expected, got), (seed, differences(expected, got))


def test_singer_sigkill_mid_sync_then_rerun_equals_clean_run(
    engine: Engine,
    forker: subprocess.Popen[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KIZUNA_TEST_TAP_KEY", TAP_SECRET)
    write_lines(tmp_path / "people.jsonl", people(ROWS, bad_every=BAD_EVERY, keyless_at=KEYLESS_AT))
    ws = write_workspace(tmp_path, {"tap": singer_section(tmp_path)})
    _crash_equals_clean(engine, forker, tmp_path, ws, "tap")
    with engine.connect() as conn:
        cursor = conn.execute(text("select cursor from sync_state")).scalar_one()
    assert f'"offset": {ROWS}' in json.dumps(
        cursor if isinstance(cursor, dict) else json.loads(cursor)
    )


def test_dlt_sigkill_mid_sync_then_rerun_equals_clean_run(
    engine: Engine,
    forker: subprocess.Popen[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.dlt_people import EXPECTED_TOKEN

    monkeypatch.setenv("KIZUNA_TEST_DLT_TOKEN", EXPECTED_TOKEN)
    write_lines(tmp_path / "people.jsonl", people(ROWS, bad_every=BAD_EVERY, keyless_at=KEYLESS_AT))
    ws = write_workspace(tmp_path, {"shop": dlt_section(tmp_path)})
    _crash_equals_clean(engine, forker, tmp_path, ws, "shop")
