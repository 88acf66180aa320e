"""README "Past one machine", followed literally: a PostgreSQL-backed Prefect server, a process
pool, `prefect deploy --all` from the generated prefect.yaml, two workers started as the README
says, and the `sync-all` run that starts one `sync-source` run per source of one workspace.

The workspace has four sources with real work each (a branch's deal export of ``ROWS`` rows;
some deals name a contact, shared between branches, so identities are resolved across them).
`sync-all` runs twice through the same pool and deployments, into two warehouses:

- on two workers, the four sources at once; then
- serially, the baseline: one worker, the pool limited to two runs (`sync-all` itself and one
  `sync-source` run), so the four sources run one after another. It goes second so that
  anything a first run pays once (cold caches) counts against the two workers, not for them.

It checks that (a) both workers executed sync-source runs, (b) the two-worker wall time is
below the serial one (and the serial runs did not overlap), (c) every table, identities
included, equals the serial run's.

The server runs without its scheduler: `sync-all` is on a 15-minute cron, and a scheduled run
starting in the middle would be measured with the manual ones (`test_serve.py` covers
schedules).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, DateTime, create_engine, inspect, select, text

from tests.conftest import pg_url_or_skip
from tests.deployments.pool_support import (
    ROWS,
    SOURCES,
    limits,
    pool,
    pool_databases,
    ran,
    stop_workers,
    sync_all,
    write_workspace,
)
from warehouse.identity.linkage import key_table

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


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.serial  # a wall-time comparison: tests/run runs it alone, after the rest
def test_two_workers_beat_one_at_a_time_and_equal_it(tmp_path: Path) -> None:
    started = time.monotonic()
    ws_file = write_workspace(tmp_path / "ws")
    with (
        pool_databases(pg_url_or_skip(), ("parallel", "serial")) as db,
        pool(tmp_path, db["prefect"], ws_file, ("w1", "w2")) as p,
    ):
        setup = time.monotonic() - started
        parallel, p_runs = sync_all(p.api, db["parallel"], pool_limit=None)
        logs = [p.log(0), p.log(1)]
        stop_workers(p.workers[1:])  # the baseline: one worker, one sync-source run at a time
        serial, s_runs = sync_all(p.api, db["serial"], pool_limit=2)
        gcls = limits(p.api)
        compared = time.monotonic()
        want, got = _contents(db["serial"]), _contents(db["parallel"])
    for runs in (p_runs, s_runs):
        assert sorted(r["sources"] for r in runs) == [[s] for s in SOURCES], runs
        assert all(r["state"] == "COMPLETED" for r in runs), (runs, logs)
    # (a) both workers executed sync-source runs of this one workspace
    on = {f"w{i + 1}": [r for r in p_runs if ran(text, r["id"])] for i, text in enumerate(logs)}
    assert sum(len(v) for v in on.values()) == len(p_runs), on  # each run on exactly one worker
    assert all(on.values()), f"a worker ran nothing: { {k: len(v) for k, v in on.items()} }"
    # (b) faster than the same runs one after another; the baseline really was serial
    ordered = sorted(s_runs, key=lambda r: r["start"])
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(ordered)), s_runs
    work = {k: sum(r["end"] - r["start"] for r in v) for k, v in (("p", p_runs), ("s", s_runs))}
    print(
        f"\nsync-all of {len(SOURCES)} sources x {ROWS} rows: two workers {parallel:.1f} s wall, "
        f"one run at a time {serial:.1f} s wall ({parallel / serial:.2f}x); sync-source run "
        f"time {work['p']:.1f} s / {work['s']:.1f} s; runs per worker "
        f"{ {k: sorted(r['sources'][0] for r in v) for k, v in on.items()} }; test: "
        f"{setup:.1f} s to two workers online, {compared - started:.1f} s to both runs done"
    )
    assert parallel < serial, (parallel, serial, p_runs, s_runs)
    # one Prefect global concurrency limit per source (API account) of each warehouse, made
    # by the first run and free again once every stream is done
    mine = {n: v for n, v in gcls.items() if n.startswith("kizuna-")}
    assert sorted(n.split("-")[1] for n in mine) == sorted(SOURCES * 2), sorted(mine)
    assert all(v == (2, 0) for v in mine.values()), mine
    # (c) every table equals the serial run's
    assert want.keys() == got.keys()
    assert sum(want["deal"].values()) == len(SOURCES) * ROWS
    differ = {
        name: (
            list((want[name] - got[name]).items())[:3],
            list((got[name] - want[name]).items())[:3],
        )
        for name in want
        if want[name] != got[name]
    }
    assert not differ, differ


def _plain(value: Any) -> Any:
    """A value without surrogate ids (JSON too: a golden field names its record's id)."""
    if isinstance(value, dict):
        return tuple(
            sorted((k, _plain(v)) for k, v in value.items() if k != "id" and not k.endswith("_id"))
        )
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return str(value)


def _digests(conn: Connection) -> Counter[tuple[Any, ...]]:
    """The index's keys as (entity, digest), without the record ids the buckets pack."""
    out: Counter[tuple[Any, ...]] = Counter()
    for (entity,) in conn.execute(text("SELECT DISTINCT entity FROM identity_key")):
        d, _ = key_table.stored_keys(conn, entity)
        out.update((entity, k) for k in d.tolist())
    return out


def _contents(url: str) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every table's rows without surrogate ids, foreign ids and times (the two runs happened
    at different moments)."""
    out: dict[str, Counter[tuple[Any, ...]]] = {}
    engine = create_engine(url)
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
            if name == "identity_key":  # a bucket packs record ids: its keys' digests
                out[name] = _digests(conn)
                continue
            rows = conn.execute(
                select(*[text(f'"{c}"') for c in cols]).select_from(text(f'"{name}"'))
            )
            out[name] = Counter(tuple(_plain(v) for v in r) for r in rows)
    engine.dispose()
    return out
