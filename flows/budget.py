"""Per-account API budgets shared by every process on one warehouse (``warehouse.budget``).

``connectors.throttle`` asks for a bucket per account key (``gmail:alice@…``); installed with
:func:`share_budgets`, each bucket takes its units from the warehouse row of that key in
slices of a twentieth of a minute's quota, and spends a slice locally, so a sync of many
streams costs a few round trips a minute, not one per API call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine

from connectors.throttle import TokenBucket, current_factory, use_budgets
from warehouse import budget


class WarehouseBucket(TokenBucket):
    """A token bucket whose tokens come from the warehouse, shared across processes."""

    def __init__(
        self,
        engine: Engine,
        key: str,
        per_minute: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(per_minute / 60.0, per_minute, sleep=sleep)
        self.engine, self.key, self.per_minute = engine, key, per_minute
        self.slice = max(1.0, per_minute / 20.0)
        self._held = 0.0

    def take(self, units: float = 1.0) -> float:
        units = min(units, self.capacity)
        waited = 0.0
        with self._lock:  # other threads of this process queue behind the slice being fetched
            while self._held < units:
                want = min(self.capacity, max(self.slice, units - self._held))
                wait = budget.take(self.engine, self.key, want, per_minute=self.per_minute)
                if wait <= 0:
                    self._held += want
                    break
                self._sleep(wait)
                waited += wait
            self._held -= units
        return waited

    @property
    def available(self) -> float:
        return self._held


class _FromWarehouse:
    """The bucket factory for one warehouse (compared by engine, so installing is idempotent)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, key: str, per_minute: float) -> TokenBucket:
        return WarehouseBucket(self.engine, key, per_minute)


def share_budgets(engine: Engine) -> None:
    """Every account bucket of this process draws on ``engine``'s warehouse from now on."""
    current = current_factory()
    if isinstance(current, _FromWarehouse) and current.engine is engine:
        return  # already installed: keep the slices the buckets hold
    use_budgets(_FromWarehouse(engine))
