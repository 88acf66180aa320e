"""Crash consistency: a sync SIGKILLed after a random number of committed pages, again and
again, then rerun, ends with exactly the warehouse of an uninterrupted run — every column of
every table (tests/support/snapshot.py), on SQLite and PostgreSQL.

It cannot pass by accident: each kill lands after the worker reported the Nth committed page
(N drawn per trial) and before it could finish, and the test requires every kill to have
stopped a live worker in the middle of its work.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import pg_url_or_skip
from tests.support.pg_schema import engine_in, fresh_schemas
from tests.support.snapshot import differences, snapshot

WORKER = """
import sys
from tests.support.fakes.fakesource import Config, streams
from tests.support.pg_schema import engine_in
from flows.engine import run_stream
from flows.workspace import Workspace, Company
from warehouse.db import upgrade
url, schema, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
ws = Workspace(company=Company(name="t", domains=["kizuna-demo.co.jp"]))
spec = streams("fake", Config(rows=rows, page_size=7, bad_every=13), ws)[0]
engine = engine_in(url, schema)
upgrade(engine)
print("ready", flush=True)
run_stream(engine, spec, "run", progress=lambda n: print("page", flush=True))
print("done", flush=True)
"""

ROWS = 600  # 86 pages of 7; the kills below stop at most 4 x 12 of them
ROOT = Path(__file__).resolve().parents[2]


def _run(url: str, schema: str, kill_after_pages: int | None) -> bool:
    """Run the worker; with a page count, SIGKILL it right after that many commits.

    Returns True when the kill stopped a live worker before it finished.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, schema, str(ROWS)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    if kill_after_pages is not None:
        for pages, line in enumerate(proc.stdout, start=1):
            if line.strip() == "done":
                break
            if pages == kill_after_pages:
                alive = proc.poll() is None
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return alive
        proc.wait()
        return False
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.strip().endswith("done"), out[-200:]
    return False


Where = tuple[str, str]  # (url, PostgreSQL schema or "")


def _crash_and_compare(clean: Where, crashed: Where) -> None:
    _run(*clean, None)
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    kills = [_run(*crashed, rng.randint(1, 12)) for _ in range(4)]
    _run(*crashed, None)
    assert all(kills), f"a kill missed the work (seed {seed}): {kills}"
    a, b = engine_in(*clean), engine_in(*crashed)
    try:
        expected, got = snapshot(a), snapshot(b)
    finally:
        a.dispose()
        b.dispose()
    # Each good row's contact, plus the stream's participant record of its address (records
    # stay records: the resolver links the two).
    assert sum(expected["person"].values()) == 2 * (ROWS - ROWS // 13)
    assert sum(expected["quarantine"].values()) == ROWS // 13
    assert not differences(expected, got), (seed, differences(expected, got))


@pytest.mark.slow
def test_sigkill_after_random_pages_then_rerun_equals_clean_run_sqlite(tmp_path: Path) -> None:
    _crash_and_compare(
        (f"sqlite:///{tmp_path / 'clean.db'}", ""), (f"sqlite:///{tmp_path / 'crashed.db'}", "")
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_after_random_pages_then_rerun_equals_clean_run_postgres() -> None:
    url = pg_url_or_skip()
    with fresh_schemas(url, 2) as (clean, crashed):
        _crash_and_compare((url, clean), (url, crashed))
