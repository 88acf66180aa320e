"""A campaign's plan and results as a viewer may see them: the lines (who gets what, who is
skipped and why) for customers in the viewer's scope, and only counts for the rest, so a
manager approving a company-wide plan reads no name outside their team.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Connection, func, select

from warehouse import schema as t
from warehouse.access import scope
from warehouse.access.scope import Viewer
from warehouse.activation import ledger
from warehouse.activation.ledger_schema import CampaignPlan, PlanEntry

MAX_LINES = 500


def current(conn: Connection, campaign: str) -> dict[str, Any] | None:
    """The plan a real run would send (``planned``/``running``)."""
    row = ledger.current_plan(conn, campaign)
    return dict(row._mapping) if row is not None else None


def latest(conn: Connection, campaign: str) -> dict[str, Any] | None:
    """The newest plan whatever its status: the one to show with its outcomes."""
    c = t.table(CampaignPlan)
    row = conn.execute(
        select(c).where(c.c.campaign == campaign).order_by(c.c.id.desc()).limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def plan_view(conn: Connection, viewer: Viewer, plan_id: int) -> dict[str, Any]:
    """Totals of the whole plan (actions, skip reasons, outcomes) and the visible lines."""
    e, p = t.table(PlanEntry), t.table(t.Person)
    totals: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for action, reason, outcome, n in conn.execute(
        select(e.c.action, e.c.reason, e.c.outcome, func.count())
        .where(e.c.plan_id == plan_id)
        .group_by(e.c.action, e.c.reason, e.c.outcome)
    ):
        totals[action] += n
        outcomes[outcome or ("pending" if action == "send" else "skipped")] += n
        if action == "skip":
            reasons[(reason or "").split(" (")[0]] += n
    visible = scope.cluster_of(e.c.person_id).in_(scope.visible_customers(viewer))
    lines = [
        dict(r._mapping)
        for r in conn.execute(
            select(
                e.c.person_id,
                e.c.step,
                e.c.action,
                e.c.reason,
                e.c.address,
                e.c.outcome,
                e.c.outcome_reason,
                p.c.full_name,
            )
            .join(p, p.c.id == e.c.person_id)
            .where(e.c.plan_id == plan_id, visible)
            .order_by(e.c.action.desc(), e.c.person_id, e.c.step)
            .limit(MAX_LINES)
        )
    ]
    shown = conn.execute(
        select(func.count()).select_from(e).where(e.c.plan_id == plan_id, visible)
    ).scalar_one()
    return {
        "totals": dict(totals),
        "reasons": reasons.most_common(),
        "outcomes": dict(outcomes),
        "lines": lines,
        "hidden": sum(totals.values()) - int(shown),
        "more": max(0, int(shown) - len(lines)),
    }
