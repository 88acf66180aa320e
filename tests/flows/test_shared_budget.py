"""One API account's quota shared across processes: buckets in different processes (here two
bucket objects, as two workers would hold) draw on one warehouse row, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import pytest
from sqlalchemy import Engine, text

from connectors import throttle
from connectors.throttle import TokenBucket
from flows.budget import WarehouseBucket, share_budgets
from tests.conftest import PG_URL
from tests.support.pg_schema import engine_in


def test_two_workers_of_one_account_share_one_quota(engine: Engine) -> None:
    per_minute = 600.0  # 10 units a second, a burst of 600
    worker_a = WarehouseBucket(engine, "gmail:alice@example.co.jp", per_minute)
    worker_b = WarehouseBucket(engine, "gmail:alice@example.co.jp", per_minute)
    other = WarehouseBucket(engine, "gmail:bob@example.co.jp", per_minute)
    assert worker_a.take(600) == 0.0  # A spends the whole minute's burst
    waited = worker_b.take(5)  # B must wait for the refill A left it
    assert 0.3 <= waited <= 5.0, waited
    assert other.take(30) == 0.0  # another account is untouched
    # Two buckets each in its own process would have let B through at once.
    assert TokenBucket(10.0, 600.0).take(5) == 0.0


def test_threads_of_one_process_share_slices_and_never_overspend(engine: Engine) -> None:
    bucket = WarehouseBucket(engine, "graph:tenant/alice", 1200.0)
    got: list[float] = []

    def spend() -> None:
        for _ in range(50):
            got.append(bucket.take(1))

    threads = [threading.Thread(target=spend) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(got) == 200 and sum(got) == 0.0  # within one minute's burst: no waiting
    assert 0 <= bucket.available < bucket.slice


def test_shared_budget_uses_the_warehouse_once_installed(engine: Engine) -> None:
    try:
        share_budgets(engine)
        bucket = throttle.shared_budget("gcal:alice@example.co.jp", per_minute=60.0)
        assert isinstance(bucket, WarehouseBucket)
        assert throttle.shared_budget("gcal:alice@example.co.jp", per_minute=60.0) is bucket
    finally:
        throttle.reset_budgets()
    assert not isinstance(throttle.shared_budget("gcal:x", per_minute=60.0), WarehouseBucket)


def _spend(url: str, schema: str, key: str, ready: Any, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One worker process: 310 calls of one unit from ``key``'s budget; reports its waits.
    Every process starts spending at once: each waits at ``ready`` after its imports and its
    first connection (a fixed head start would be too short on a loaded machine)."""
    engine = engine_in(url, schema)
    bucket = WarehouseBucket(engine, key, 600.0)
    with engine.connect():
        pass
    ready.wait(timeout=120)
    began = time.monotonic()
    waited = sum(bucket.take(1) for _ in range(310))
    out.put((key, waited, time.monotonic() - began))
    engine.dispose()


def _race(engine: Engine, keys: list[str]) -> list[tuple[str, float, float]]:
    if engine.dialect.name == "sqlite":
        url, schema = str(engine.url), ""
    else:
        with engine.connect() as conn:
            url, schema = PG_URL, str(conn.execute(text("show search_path")).scalar_one())
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    ready = ctx.Barrier(len(keys))
    procs = [ctx.Process(target=_spend, args=(url, schema, k, ready, out)) for k in keys]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return got


@pytest.mark.slow
def test_two_processes_of_one_account_wait_for_one_quota(engine: Engine) -> None:
    """600 a minute (a burst of 600, 10 a second after it): two processes spending 310 each
    on one account overdraw it by 20, so they wait about two seconds between them; on two
    accounts (or with one bucket per process, as before) neither waits at all. All four
    processes race at once (one spawn instead of two: each costs seconds of imports)."""
    got = _race(
        engine, ["hubspot:portal-1", "hubspot:portal-1", "hubspot:portal-2", "hubspot:portal-3"]
    )
    shared = [(w, e) for k, w, e in got if k == "hubspot:portal-1"]
    apart = [(w, e) for k, w, e in got if k != "hubspot:portal-1"]
    assert len(shared) == len(apart) == 2, got
    assert sum(w for w, _ in shared) >= 1.0, shared
    assert max(e for _, e in shared) >= 1.5, shared
    assert sum(w for w, _ in apart) == 0.0, apart
