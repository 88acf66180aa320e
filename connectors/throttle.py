"""Throttling shared by every HTTP connector: honour the server, back off, share one quota.

Three pieces, composed by :func:`call`:

- **Retry-After** (seconds or an HTTP date) is honoured as the minimum wait before retrying;
- **exponential backoff with full jitter** (``uniform(0, min(cap, base * 2**attempt))``) spreads
  parallel streams that were throttled together;
- a **per-account token bucket** (:func:`shared_budget`) is taken before each call with the
  call's quota cost (Gmail: ``messages.get`` 5 units, ``history.list`` 2, ... of 6,000 units
  per user per minute), so parallel streams of one account in one process share one quota.

After ``max_retries`` in-connector retries — or at once if the server asks for a wait longer
than ``max_wait`` — the call raises ``TransientError(retry_after=...)`` and the Prefect task
retries the whole stream later; progress up to the last committed page is kept.

Across processes (several workers syncing one account) the flows layer installs, through
:func:`use_budgets`, a bucket kept in the warehouse (``flows.budget``), so all of them share
the account's one quota; without it the bucket coordinates the threads of one process. Sleep, clock and randomness are injected so tests
never sleep.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from kizuna.errors import KizunaError, TransientError

T = TypeVar("T")

Sleep = Callable[[float], None]
Clock = Callable[[], float]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


class Budget(Protocol):
    """What a call takes before it goes out (blocking until the account may make it), and
    settles once the answer is back."""

    def take(self, units: float = 1.0) -> float: ...

    def settle(self) -> None: ...


class RollingWindow:
    """At most ``limit`` calls in any ``window`` seconds: the rule APIs such as HubSpot count.

    A token bucket of capacity R refilled at R/s lets nearly 2R calls into one rolling second
    (the full bucket, then the refill), which a rolling-window server answers with 429s. Here
    a call counts from the moment it is taken until a whole window after its answer came
    back (``settle``): the server saw it at some moment in between, so however late a request
    travels, no window the server counts can hold more than ``limit`` of ours. Thread-safe;
    clock and sleep injected for tests.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rolling window needs a positive limit and window")
        self.limit, self.window = limit, window
        self._clock, self._sleep = clock, sleep
        self._calls: list[list[float]] = []  # [answered at], inf while in flight
        self._mine = threading.local()
        self._lock = threading.Lock()

    def take(self, units: float = 1.0) -> float:
        n = min(self.limit, max(1, round(units)))
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._calls = [c for c in self._calls if c[0] > now - self.window]
                over = len(self._calls) + n - self.limit
                if over <= 0:
                    cells = [[math.inf] for _ in range(n)]
                    self._calls.extend(cells)
                    self._mine.cells = [*getattr(self._mine, "cells", []), *cells]
                    return waited
                free_at = sorted(c[0] for c in self._calls)[over - 1]
            wait = free_at + self.window - now if free_at != math.inf else 0.005
            wait = max(wait, 0.001)
            self._sleep(wait)
            waited += wait

    def settle(self) -> None:
        with self._lock:
            now = self._clock()
            for cell in getattr(self._mine, "cells", []):
                cell[0] = now
            self._mine.cells = []


class Paced:
    """Several budgets taken in turn (a per-endpoint limit inside the account's overall one)."""

    def __init__(self, *budgets: Budget) -> None:
        self.budgets = budgets

    def take(self, units: float = 1.0) -> float:
        return sum(b.take(units) for b in self.budgets)

    def settle(self) -> None:
        for b in self.budgets:
            b.settle()


class TokenBucket:
    """A quota of ``capacity`` units refilled at ``rate`` units per second, thread-safe.

    ``take`` blocks (through the injected sleep) until the units are there, so a stream waits
    for its own account's quota instead of hitting 429s.
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("a token bucket needs a positive rate and capacity")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        t = self._clock()
        self._tokens = min(self.capacity, self._tokens + (t - self._stamp) * self.rate)
        self._stamp = t

    def take(self, units: float = 1.0) -> float:
        """Take ``units`` (waiting if needed); returns the seconds waited."""
        units = min(units, self.capacity)
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= units - 1e-9:  # float refill may land a hair short
                    self._tokens = max(0.0, self._tokens - units)
                    return waited
                wait = (units - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait

    def settle(self) -> None:
        """A bucket counts calls when they are taken; nothing to do when they end."""

    @property
    def available(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens


_budgets: dict[str, TokenBucket] = {}
_budgets_lock = threading.Lock()
BudgetFactory = Callable[[str, float], TokenBucket]
_factory: BudgetFactory | None = None


def use_budgets(factory: BudgetFactory | None) -> None:
    """Make :func:`shared_budget` build its buckets with ``factory(key, per_minute)``.

    The flows layer installs a bucket kept in the warehouse, so every process syncing one
    account shares one quota; connectors stay free of any database. None: per process.
    """
    global _factory
    with _budgets_lock:
        if factory is not _factory:
            _factory = factory
            _budgets.clear()


def shared_budget(
    key: str,
    *,
    per_minute: float,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> TokenBucket:
    """The one bucket of ``key`` (e.g. ``"gmail:alice@example.co.jp"``) in this process."""
    with _budgets_lock:
        bucket = _budgets.get(key)
        if bucket is None:
            if _factory is not None:
                bucket = _factory(key, per_minute)
            else:
                bucket = TokenBucket(per_minute / 60.0, per_minute, clock=clock, sleep=sleep)
            _budgets[key] = bucket
        return bucket


def budget_or_shared(budget: TokenBucket | None, key: str, *, per_minute: float) -> TokenBucket:
    """The bucket a test injected, else the process-wide one of ``key`` (see shared_budget)."""
    return budget if budget is not None else shared_budget(key, per_minute=per_minute)


def current_factory() -> BudgetFactory | None:
    """The factory :func:`use_budgets` installed, if any."""
    return _factory


def reset_budgets() -> None:
    """Forget every shared bucket and the installed factory (tests, or a long-lived process
    whose quotas changed; the next sync installs its factory again)."""
    global _factory
    with _budgets_lock:
        _budgets.clear()
        _factory = None


@dataclass(frozen=True)
class RetryPolicy:
    """How long one call may keep trying inside a connector before giving up to Prefect."""

    max_retries: int = 4
    base: float = 1.0
    cap: float = 60.0
    max_wait: float = 120.0
    """A Retry-After longer than this is not slept through: the task is retried later."""
    sleep: Sleep = field(default=time.sleep, compare=False)
    rand: Callable[[], float] = field(default=random.random, compare=False)

    def backoff(self, attempt: int) -> float:
        """Full jitter: a uniform draw below the exponential ceiling."""
        return float(self.rand() * min(self.cap, self.base * (2**attempt)))


Classify = Callable[[BaseException], KizunaError | None]


def call(
    fn: Callable[[], T],
    *,
    classify: Classify,
    policy: RetryPolicy,
    budget: Budget | None = None,
    cost: float = 1.0,
    what: str = "request",
) -> T:
    """Run ``fn`` under the account's budget, retrying what ``classify`` calls transient.

    ``classify`` turns a client exception into a Kizuna error (or None: not ours, re-raise).
    Non-transient errors are raised at once; the original exception is kept as the cause for
    debugging but is never part of the message.
    """
    attempt = 0
    while True:
        if budget is not None:
            budget.take(cost)
        try:
            out = fn()
        except Exception as exc:
            if budget is not None:
                budget.settle()
            err = exc if isinstance(exc, KizunaError) else classify(exc)
            if err is None:
                raise
            if not isinstance(err, TransientError):
                if err is exc:
                    raise
                raise err from exc
            # The server's Retry-After is the wait: a jittered backoff on top of a wait of a
            # few milliseconds would idle the account's quota. Backoff only when it gives none.
            wait = err.retry_after if err.retry_after is not None else policy.backoff(attempt)
            if attempt >= policy.max_retries or (err.retry_after or 0.0) > policy.max_wait:
                raise TransientError(
                    f"{what}: gave up after {attempt + 1} attempts: {err}",
                    retry_after=err.retry_after if err.retry_after is not None else wait,
                ) from exc
            policy.sleep(wait)
            attempt += 1
            continue
        if budget is not None:
            budget.settle()
        return out
