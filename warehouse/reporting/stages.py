"""Deal stages: their order, which are terminal, and what the stage history says about them.

Conversion and time-in-stage are folded from ``deal_stage_history`` one deal at a time, with
the rule that a row stamped at its deal's ``created_at`` is an import, not a change; the
pipeline only adds the open deals' counts and sums to the rows this module fills.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, case, func, select

from warehouse import schema as t
from warehouse.reporting.model import utc


@dataclass
class StageRow:
    stage: str
    count: int = 0
    amount: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    exited: int = 0
    advanced: int = 0
    days_total: float = 0.0
    days_n: int = 0
    age_total: float = 0.0
    age_n: int = 0

    @property
    def conversion(self) -> float | None:
        """Of the deals that left this stage (or closed in it), the share that moved on to a
        later stage or were won. Deals still sitting in it are undecided and not counted."""
        return self.advanced / self.exited if self.exited else None

    @property
    def avg_days(self) -> float | None:
        """Average days a deal spent in this stage before leaving it."""
        return self.days_total / self.days_n if self.days_n else None

    @property
    def avg_age(self) -> float | None:
        """Average days the open deals have been sitting in this stage so far."""
        return self.age_total / self.age_n if self.age_n else None


def _is_import_stamp(entered: datetime, created: datetime | None) -> bool:
    return created is not None and utc(entered) == utc(created)


def stage_order(conn: Connection, configured: Sequence[str] = ()) -> list[str]:
    """Configured stages first, then the rest by the average probability of their deals."""
    d = t.table(t.Deal)
    q = (
        select(d.c.stage, func.avg(d.c.probability), func.min(d.c.id))
        .where(d.c.stage.is_not(None), d.c.deleted_at.is_(None))
        .group_by(d.c.stage)
    )
    rest = sorted(
        ((s, float(p) if p is not None else 1000.0, i) for s, p, i in conn.execute(q)),
        key=lambda x: (x[1], x[2]),
    )
    out = list(dict.fromkeys(configured))
    out.extend(s for s, _, _ in rest if s not in out)
    return out


def terminal_stages(conn: Connection) -> set[str]:
    """Stages only closed deals are in (受注, 失注, Closed Lost): reaching one is no progress."""
    d = t.table(t.Deal)
    q = (
        select(d.c.stage)
        .where(d.c.stage.is_not(None), d.c.deleted_at.is_(None))
        .group_by(d.c.stage)
        .having(func.sum(case((d.c.status == "open", 1), else_=0)) == 0)
    )
    return {s for (s,) in conn.execute(q)}


def fold_history(
    conn: Connection,
    rows: dict[str, StageRow],
    order: dict[str, int],
    terminal: set[str],
    as_of: datetime,
    owner_ids: Sequence[int] | None,
) -> dict[int, datetime]:
    """Fold the stage history, deal by deal, into conversion and time-in-stage.

    Streams the rows in deal order; returns each deal's last real (not import-stamped)
    stage change, which counts as a touch for staleness.
    """
    d = t.table(t.Deal)
    h = t.table(t.DealStageHistory)
    # The deals in scope are read first and the history streamed on its own: a join here
    # lets a planner without statistics (a freshly imported PostgreSQL table) pick a nested
    # loop that takes minutes instead of a second.
    dq = select(d.c.id, d.c.status, d.c.created_at).where(d.c.deleted_at.is_(None))
    if owner_ids is not None:
        dq = dq.where(d.c.owner_id.in_(list(owner_ids)))
    scope: dict[int, tuple[str, datetime | None]] = {
        i: (st, created) for i, st, created in conn.execute(dq)
    }
    q = (
        select(h.c.deal_id, h.c.stage, h.c.entered_at)
        .where(h.c.entered_at <= as_of)
        .order_by(h.c.deal_id, h.c.entered_at, h.c.id)
    )
    last_change: dict[int, datetime] = {}

    imported: set[int] = set()  # positions in the path of import-stamped rows

    def fold(path: list[tuple[str | None, datetime]], status: str) -> None:
        stages = [s for s, _ in path]
        for i, (stage, at) in enumerate(path):
            if stage is None or stage not in rows:
                continue
            row = rows[stage]
            if stage not in stages[:i] and (i + 1 < len(path) or status != "open"):
                row.exited += 1
                later = [s for s in stages[i + 1 :] if s is not None and s not in terminal]
                if status == "won" or any(order.get(s, -1) > order[stage] for s in later):
                    row.advanced += 1
            if i in imported:
                continue  # when Kizuna first saw it, not when it entered the stage
            if i + 1 < len(path):
                row.days_total += (path[i + 1][1] - at).total_seconds() / 86400
                row.days_n += 1
            elif status == "open":
                row.age_total += (as_of - at).total_seconds() / 86400
                row.age_n += 1

    current: int | None = None
    path: list[tuple[str | None, datetime]] = []
    status = "open"
    # On the statement, not the connection: Connection.execution_options() changes the
    # connection in place, and every later query would become a server-side cursor.
    result = conn.execute(q.execution_options(yield_per=2000))
    for deal_id, stage, entered in result:
        deal = scope.get(deal_id)
        if deal is None:
            continue
        st, created = deal
        if deal_id != current:
            if current is not None:
                fold(path, status)
            current, path, status = deal_id, [], st
            imported.clear()
        at = utc(entered)
        if path and path[-1][0] == stage:
            continue  # a repeated row is not a change
        path.append((stage, at))
        if _is_import_stamp(entered, created):
            imported.add(len(path) - 1)
        else:
            last_change[deal_id] = at
    if current is not None:
        fold(path, status)
    return last_change
