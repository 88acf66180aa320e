"""Shared throttling: Retry-After forms, full-jitter backoff, bounded retries, one quota per
account across parallel streams. Clock and sleep are fakes: nothing here sleeps."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from connectors.throttle import (
    RetryPolicy,
    TokenBucket,
    call,
    parse_retry_after,
    reset_budgets,
    shared_budget,
)
from kizuna.errors import AuthError, KizunaError, TransientError


class FakeClock:
    """Time that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.t = 0.0
        self.lock = threading.Lock()

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        with self.lock:
            self.t += s


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 3, 3, 1, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Tue, 03 Mar 2026 01:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Tue, 03 Mar 2026 00:59:00 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None and parse_retry_after("") is None


def test_bucket_waits_for_refill_instead_of_overspending() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100.0, capacity=600.0, clock=clock.now, sleep=clock.sleep)
    for _ in range(120):  # 120 messages.get at 5 units = the whole burst
        bucket.take(5)
    assert clock.t == 0.0
    waited = bucket.take(5)  # the 121st waits for 5 units at 100/s
    assert waited == pytest.approx(0.05) and clock.t == pytest.approx(0.05)


def test_parallel_streams_of_one_account_share_one_quota() -> None:
    reset_budgets()
    clock = FakeClock()
    a = shared_budget("gmail:sato@ourco.co.jp", per_minute=6000, clock=clock.now, sleep=clock.sleep)
    b = shared_budget("gmail:sato@ourco.co.jp", per_minute=6000, clock=clock.now, sleep=clock.sleep)
    other = shared_budget(
        "gmail:suzuki@ourco.co.jp", per_minute=6000, clock=clock.now, sleep=clock.sleep
    )
    assert a is b and a is not other

    def stream() -> None:
        for _ in range(600):
            a.take(5)

    threads = [threading.Thread(target=stream) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # 2 × 600 × 5 = 6,000 units: the burst (6,000) covers it exactly, a third stream would wait.
    assert a.available == pytest.approx(0.0, abs=1e-6)
    assert other.available == pytest.approx(6000.0)
    reset_budgets()


def classify(exc: BaseException) -> KizunaError | None:
    if isinstance(exc, TimeoutError):
        return TransientError("timed out", retry_after=None)
    if isinstance(exc, PermissionError):
        return AuthError("revoked")
    if isinstance(exc, LookupError):
        return TransientError("throttled (429)", retry_after=float(str(exc.args[0])))
    return None


def test_backoff_is_full_jitter_and_bounded() -> None:
    sleeps: list[float] = []
    draws = iter([1.0, 1.0, 1.0, 1.0, 1.0])
    policy = RetryPolicy(
        max_retries=4, base=1.0, cap=5.0, sleep=sleeps.append, rand=lambda: next(draws)
    )
    attempts = 0

    def flaky() -> str:
        nonlocal attempts
        attempts += 1
        raise TimeoutError

    with pytest.raises(TransientError) as info:
        call(flaky, classify=classify, policy=policy, what="op")
    assert attempts == 5 and sleeps == [1.0, 2.0, 4.0, 5.0]  # capped at 5
    assert info.value.retry_after is not None and "gave up after 5 attempts" in str(info.value)


def test_retry_after_beats_backoff_and_long_waits_go_to_prefect() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_retries=3, max_wait=60, sleep=sleeps.append, rand=lambda: 0.1)
    answers: list[BaseException | str] = [LookupError("30"), "ok"]

    def fn() -> str:
        a = answers.pop(0)
        if isinstance(a, BaseException):
            raise a
        return a

    assert call(fn, classify=classify, policy=policy) == "ok"
    assert sleeps == [30.0]

    answers[:] = [LookupError("3600")]
    with pytest.raises(TransientError) as info:
        call(fn, classify=classify, policy=policy)
    assert info.value.retry_after == 3600.0 and sleeps == [30.0]  # not slept in-process


def test_fatal_errors_are_not_retried_and_unknown_errors_pass_through() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(sleep=sleeps.append)

    def revoked() -> None:
        raise PermissionError("token xyz")

    with pytest.raises(AuthError) as info:
        call(revoked, classify=classify, policy=policy)
    assert str(info.value) == "revoked" and sleeps == []

    def bug() -> None:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        call(bug, classify=classify, policy=policy)


def test_transient_kizuna_errors_raised_inside_are_retried_too() -> None:
    """E.g. the token endpoint answering 503 while a Graph call fetches its token."""
    sleeps: list[float] = []
    answers: list[BaseException | str] = [TransientError("token endpoint 503", 2.0), "ok"]

    def fn() -> str:
        a = answers.pop(0)
        if isinstance(a, BaseException):
            raise a
        return a

    policy = RetryPolicy(sleep=sleeps.append, rand=lambda: 0.0)
    assert call(fn, classify=classify, policy=policy) == "ok"
    assert sleeps == [2.0]
