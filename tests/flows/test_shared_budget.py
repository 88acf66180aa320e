"""One API account's quota shared across processes: buckets in different processes (here two
bucket objects, as two workers would hold) draw on one warehouse row, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from connectors import throttle
from connectors.throttle import TokenBucket
from flows.budget import WarehouseBucket, share_budgets


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
