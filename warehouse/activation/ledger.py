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

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from warehouse import schema as t
from warehouse.activation.audience import utc
from warehouse.activation.ledger_schema import CampaignPlan, Delivery, PlanEntry
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


def first_plan_time(conn: Connection, campaign: str) -> datetime | None:
    q = select(func.min(CampaignPlan.as_of)).where(CampaignPlan.campaign == campaign)
    value = conn.execute(q).scalar()
    return None if value is None else utc(value)


def last_plan_time(conn: Connection, campaign: str) -> datetime | None:
    q = select(func.max(CampaignPlan.created_at)).where(CampaignPlan.campaign == campaign)
    value = conn.execute(q).scalar()
    return None if value is None else utc(value)


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


@dataclass(frozen=True)
class Want:
    """One send about to happen: its ledger key and what the pending row records."""

    key: Key
    message_id: str
    address: str | None


def claim(
    conn: Connection,
    wants: Sequence[Want],
    *,
    channel: str,
    plan_id: int | None,
    at: datetime,
) -> dict[Key, Claim]:
    """Write the ``pending`` rows before any send (or find the rows an earlier run wrote).

    One statement for a group of recipients; a row is ``fresh`` only if this call's token is
    the one stored, so two claimers can never both believe they created it.
    """
    if not wants:
        return {}
    token = f"claim:{uuid.uuid4().hex}"
    campaign = wants[0].key.campaign
    rows = [
        {
            "campaign": w.key.campaign,
            "person_id": w.key.person_id,
            "step": w.key.step,
            "channel": channel,
            "address": w.address,
            "message_id": w.message_id,
            "status": "pending",
            "plan_id": plan_id,
            "created_at": utc(at),
            "attempts": 1,
            "detail": token,
        }
        for w in wants
    ]
    stmt = _dialect_insert(conn).on_conflict_do_nothing(
        index_elements=["campaign", "person_id", "step"]
    )
    conn.execute(stmt, rows)
    found: dict[Key, Claim] = {}
    stale: list[int] = []
    pids = [w.key.person_id for w in wants]
    q = select(
        Delivery.id,
        Delivery.person_id,
        Delivery.step,
        Delivery.status,
        Delivery.message_id,
        Delivery.detail,
    ).where(Delivery.campaign == campaign, Delivery.person_id.in_(pids))
    for did, pid, step, status, mid, detail in conn.execute(q):
        key = Key(campaign, int(pid), int(step))
        fresh = detail == token
        found[key] = Claim(str(status), fresh, str(mid))
        if not fresh and status == "pending":
            stale.append(int(did))
    if stale:
        conn.execute(
            update(Delivery).where(Delivery.id.in_(stale)).values(attempts=Delivery.attempts + 1)
        )
    return {w.key: found[w.key] for w in wants}


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
