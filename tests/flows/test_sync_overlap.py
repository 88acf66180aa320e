"""Syncs that collide: two, then four, syncs of the demo workspace started at the same instant
on one fresh PostgreSQL warehouse (the same sources, and different ones) all end green or
skip a stream another run holds, and leave every table equal to a serial run's."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.demo.generate import generate
from tests.conftest import pg_url_or_skip
from tests.support.pg_schema import engine_in, fresh_schemas
from tests.support.snapshot import differences, snapshot

ROOT = Path(__file__).resolve().parents[2]
ALL = "customers,deals,mail,calendar"


def _syncs(ws_file: Path, url: str, schema: str, groups: list[str]) -> list[str]:
    start = time.time() + 4.0  # every process starts its work at the same instant
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.sync_worker",
                str(ws_file),
                url,
                schema,
                str(start),
                g,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for g in groups
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, out + err[-3000:]
        assert "database is locked" not in out + err and "Traceback" not in err, err[-3000:]
        outs.append(out)
    return outs


def _compare(tmp_path: Path, sources: str, four: list[str]) -> None:
    url = pg_url_or_skip()
    ws_file = generate(tmp_path / "demo", messages=120, seed=5)
    with fresh_schemas(url, 3) as (serial, two, four_schema):
        for source in sources.split(","):
            _syncs(ws_file, url, serial, [source])
        two_runs = _syncs(ws_file, url, two, [sources, sources])
        four_runs = _syncs(ws_file, url, four_schema, four)
        engines = [engine_in(url, s) for s in (serial, two, four_schema)]
        try:
            base, got2, got4 = (snapshot(e) for e in engines)
        finally:
            for e in engines:
                e.dispose()
    assert sum(base["person"].values()) > 30 and sum(base["activity"].values()) > 80
    assert not differences(base, got2), differences(base, got2)
    assert not differences(base, got4), differences(base, got4)
    # The runs really overlapped: in each round some run found a stream held by another.
    assert any("waiting: stream" in o for o in two_runs), two_runs
    assert any("waiting: stream" in o for o in four_runs), four_runs


@pytest.mark.slow
@pytest.mark.postgres
def test_two_then_four_concurrent_syncs_of_the_same_sources_equal_a_serial_run(
    tmp_path: Path,
) -> None:
    """Mail: activities by Message-ID, people and companies from participants, four times.

    One source, because two different streams at once still find-or-create one company
    twice until #18 lands (see the skipped test below)."""
    _compare(tmp_path, "mail", ["mail"] * 4)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skip(
    reason="needs #18: customers and deals streams at once both create one company today"
)
def test_concurrent_syncs_of_different_sources_equal_a_serial_run(tmp_path: Path) -> None:
    _compare(tmp_path, ALL, [ALL, "customers,deals", "mail,calendar", ALL])
