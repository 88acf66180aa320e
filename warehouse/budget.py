"""Rate budgets shared across processes: one token bucket per API account, in the warehouse.

Several workers syncing streams of one Gmail or Graph account must together stay under that
account's quota; a bucket in one process cannot see the others. Here the bucket is a row:
each :func:`take` refills it for the time since its last use and takes from it in one write
transaction (row lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so takers on any host
share one budget. Callers take slices, not single calls (``flows.budget``).
"""

from __future__ import annotations

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from warehouse import schema as t
from warehouse.db import write_transaction
from warehouse.lease_schema import RateBudget
from warehouse.state import now


def take(engine: Engine, key: str, units: float, *, per_minute: float) -> float:
    """Take ``units`` of ``key``'s budget (``per_minute`` units a minute, bursts up to one
    minute's worth). Returns 0 when taken, else the seconds until they will be there
    (nothing is taken then: call again after waiting)."""
    rate, capacity = per_minute / 60.0, per_minute
    units = min(units, capacity)
    with write_transaction(engine) as conn:
        at = now()
        table = t.table(RateBudget)
        ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
        conn.execute(
            ins.on_conflict_do_nothing(index_elements=["key"]),
            {"key": key, "tokens": capacity, "stamp": at},
        )
        q = select(RateBudget.tokens, RateBudget.stamp).where(RateBudget.key == key)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        tokens, stamp = conn.execute(q).one()
        elapsed = max(0.0, (at - stamp).total_seconds())
        tokens = min(capacity, float(tokens) + elapsed * rate)
        wait = 0.0
        if tokens >= units:
            tokens -= units
        else:
            wait = (units - tokens) / rate
        conn.execute(
            update(RateBudget).where(RateBudget.key == key).values(tokens=tokens, stamp=at)
        )
    return wait
