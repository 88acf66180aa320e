"""Reading and writing the campaign ledgers: plans (the approval gate) and deliveries.

The exactly-once protocol, per recipient and step:

1. :func:`claim` commits a ``pending`` delivery row keyed (campaign, person, step) — the
   unique key means a second claimer finds the row instead of creating another;
2. the channel sends the message carrying the row's deterministic Message-ID;
3. :func:`mark_sent` commits ``sent``.

A crash between 1 and 3 leaves ``pending``: the next run treats the row as in doubt and asks
the channel for the Message-ID before sending again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from warehouse import schema as t
from warehouse.audience import utc
from warehouse.ledger_schema import CampaignPlan, Delivery, PlanEntry
from warehouse.state import now
from warehouse.upsert import chunks

OPEN_OUTCOMES = (None, "deferred")


def _dialect_insert(conn: Connection) -> Any:
    table = t.table(Delivery)
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@dataclass(frozen=True)
class Key:
    campaign: str
    person_id: int
    step: int


@dataclass(frozen=True)
class Claim:
    status: str
    """``pending`` | ``sent`` | ``failed``: the row's state after the claim."""
    fresh: bool
    """True when this call created the row (nothing can have been sent yet)."""
    message_id: str


def create_plan(
    conn: Connection,
    campaign: str,
    *,
    as_of: datetime,
    config_hash: str,
    entries: Sequence[Mapping[str, Any]],
    counts: Mapping[str, int],
) -> int:
    """Store a dry run's plan; any earlier plan not yet started is superseded by it."""
    conn.execute(
        update(CampaignPlan)
        .where(CampaignPlan.campaign == campaign)
        .where(CampaignPlan.status.in_(("planned", "running")))
        .values(status="superseded")
    )
    plan_id = int(
        conn.execute(
            insert(CampaignPlan).returning(CampaignPlan.id),
            {
                "campaign": campaign,
                "status": "planned",
                "created_at": now(),
                "as_of": utc(as_of),
                "config_hash": config_hash,
                "counts": dict(counts),
            },
        ).scalar_one()
    )
    rows = [{**e, "plan_id": plan_id} for e in entries]
    for part in chunks(rows, 2000):
        conn.execute(insert(PlanEntry), list(part))
    return plan_id


def current_plan(conn: Connection, campaign: str) -> Row[Any] | None:
    """The newest plan that is approved but not finished (``planned`` or ``running``)."""
    row = conn.execute(
        select(CampaignPlan)
        .where(CampaignPlan.campaign == campaign, CampaignPlan.status.in_(("planned", "running")))
        .order_by(CampaignPlan.id.desc())
        .limit(1)
    ).first()
    return row


def start_plan(conn: Connection, plan_id: int, at: datetime) -> None:
    conn.execute(
        update(CampaignPlan)
        .where(CampaignPlan.id == plan_id, CampaignPlan.started_at.is_(None))
        .values(started_at=utc(at))
    )
    conn.execute(update(CampaignPlan).where(CampaignPlan.id == plan_id).values(status="running"))


def finish_plan_if_done(conn: Connection, plan_id: int, at: datetime) -> bool:
    left = conn.execute(
        select(func.count())
        .select_from(PlanEntry)
        .where(
            PlanEntry.plan_id == plan_id,
            PlanEntry.action == "send",
            (PlanEntry.outcome.is_(None)) | (PlanEntry.outcome == "deferred"),
        )
    ).scalar_one()
    if left:
        return False
    conn.execute(
        update(CampaignPlan)
        .where(CampaignPlan.id == plan_id)
        .values(status="done", finished_at=utc(at))
    )
    return True


def open_entry_ids(conn: Connection, plan_id: int) -> list[int]:
    """Entries still to act on, in a stable order (so batches are reproducible)."""
    q = (
        select(PlanEntry.id)
        .where(
            PlanEntry.plan_id == plan_id,
            PlanEntry.action == "send",
            (PlanEntry.outcome.is_(None)) | (PlanEntry.outcome == "deferred"),
        )
        .order_by(PlanEntry.id)
    )
    return [int(x) for x in conn.execute(q).scalars()]


def entries(conn: Connection, ids: Sequence[int]) -> list[Row[Any]]:
    out: list[Row[Any]] = []
    for part in chunks(list(ids), 900):
        q = select(PlanEntry).where(PlanEntry.id.in_(part)).order_by(PlanEntry.id)
        out.extend(conn.execute(q).all())
    return out


def plan_entries(conn: Connection, plan_id: int) -> list[Row[Any]]:
    q = select(PlanEntry).where(PlanEntry.plan_id == plan_id).order_by(PlanEntry.id)
    return list(conn.execute(q).all())


def set_outcome(
    conn: Connection, entry_id: int, outcome: str, reason: str | None, at: datetime
) -> None:
    conn.execute(
        update(PlanEntry)
        .where(PlanEntry.id == entry_id)
        .values(outcome=outcome, outcome_reason=reason, done_at=utc(at))
    )


def claim(
    conn: Connection,
    key: Key,
    *,
    message_id: str,
    channel: str,
    address: str | None,
    plan_id: int | None,
    at: datetime,
) -> Claim:
    """Write the ``pending`` row before any send (or find the row an earlier run wrote)."""
    campaign, person_id, step = key.campaign, key.person_id, key.step
    stmt = (
        _dialect_insert(conn)
        .values(
            campaign=campaign,
            person_id=person_id,
            step=step,
            channel=channel,
            address=address,
            message_id=message_id,
            status="pending",
            plan_id=plan_id,
            created_at=utc(at),
            attempts=1,
        )
        .on_conflict_do_nothing(index_elements=["campaign", "person_id", "step"])
    )
    fresh = conn.execute(stmt).rowcount == 1
    row = conn.execute(
        select(Delivery.status, Delivery.message_id).where(
            Delivery.campaign == campaign, Delivery.person_id == person_id, Delivery.step == step
        )
    ).one()
    if not fresh and row.status == "pending":
        conn.execute(
            update(Delivery)
            .where(Delivery.campaign == campaign, Delivery.person_id == person_id)
            .where(Delivery.step == step)
            .values(attempts=Delivery.attempts + 1)
        )
    return Claim(str(row.status), fresh, str(row.message_id))


def mark(
    conn: Connection,
    key: Key,
    *,
    status: str,
    at: datetime,
    detail: str | None = None,
) -> None:
    campaign, person_id, step = key.campaign, key.person_id, key.step
    values: dict[str, Any] = {"status": status, "detail": detail}
    if status == "sent":
        values["sent_at"] = utc(at)
    conn.execute(
        update(Delivery)
        .where(Delivery.campaign == campaign, Delivery.person_id == person_id)
        .where(Delivery.step == step)
        .values(**values)
    )


def sent_counts(conn: Connection, person_ids: Sequence[int], since: datetime) -> dict[int, int]:
    """Messages sent to each person since ``since``, over every campaign (frequency caps)."""
    out: dict[int, int] = {}
    for part in chunks(list(dict.fromkeys(person_ids)), 900):
        q = (
            select(Delivery.person_id, func.count())
            .where(
                Delivery.person_id.in_(part),
                Delivery.status == "sent",
                Delivery.sent_at >= utc(since),
            )
            .group_by(Delivery.person_id)
        )
        out.update({int(p): int(n) for p, n in conn.execute(q)})
    return out


def deliveries(
    conn: Connection, campaign: str
) -> dict[tuple[int, int], tuple[str, datetime | None]]:
    """(person, step) → (status, sent_at) for one campaign."""
    q = select(Delivery.person_id, Delivery.step, Delivery.status, Delivery.sent_at).where(
        Delivery.campaign == campaign
    )
    return {(int(p), int(s)): (str(st), at) for p, s, st, at in conn.execute(q)}
