"""Reading and writing the campaign ledgers: plans (the approval gate) and deliveries.

The exactly-once protocol, per recipient and step:

1. :func:`claim` commits a ``pending`` delivery row keyed (campaign, person, step) — the
   unique key means a second claimer finds the row instead of creating another;
2. the channel sends the message carrying the row's deterministic Message-ID;
3. :func:`mark_sent` commits ``sent``.

A crash between 1 and 3 leaves ``pending``. The row names the lease of the run that claimed
it; it is in doubt only once that lease is no longer live (``warehouse.lease``): until then
another run is sending it right now and the row is left alone (``busy``). An in-doubt row is
resolved by asking the channel for the Message-ID; when the channel cannot tell, the row is
``held`` for a person, who decides with :func:`decide` (``resend`` or mark it ``sent``).

Statuses: ``pending`` → ``sent`` | ``failed`` | ``held``; ``held`` → ``resend`` (by a person)
→ ``pending`` (claimed again by the next run) or ``held`` → ``sent`` (a person saw it arrive).
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
from warehouse.activation.audience import customer_of, members, utc
from warehouse.activation.ledger_schema import CampaignPlan, Delivery, PlanEntry
from warehouse.lease import live_owners
from warehouse.state import now
from warehouse.write.upsert import chunks

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
    """``pending`` | ``sent`` | ``failed`` | ``held`` | ``busy`` (pending, and the run that
    claimed it is alive and sending it now): the row's state after the claim."""
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
    owner: str = "",
) -> dict[Key, Claim]:
    """Write the ``pending`` rows before any send (or find the rows an earlier run wrote).

    One statement for a group of recipients; a row is ``fresh`` only if this call's token is
    the one stored, so two claimers can never both believe they created it. ``owner`` is the
    claiming run's lease token: a pending row whose owner still holds a live lease is
    ``busy``, not in doubt. A row a person released for resending is claimed afresh.
    """
    if not wants:
        return {}
    token = f"claim:{owner or '-'}:{uuid.uuid4().hex}"
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
    pids = [w.key.person_id for w in wants]
    q = select(Delivery.id).where(
        Delivery.campaign == campaign, Delivery.person_id.in_(pids), Delivery.status == "resend"
    )
    again = [int(i) for i in conn.execute(q).scalars()]
    if again:
        conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(again))
            .values(status="pending", detail=token, attempts=Delivery.attempts + 1)
        )
    found: dict[Key, Claim] = {}
    stale: list[int] = []
    q2 = select(
        Delivery.id,
        Delivery.person_id,
        Delivery.step,
        Delivery.status,
        Delivery.message_id,
        Delivery.detail,
    ).where(Delivery.campaign == campaign, Delivery.person_id.in_(pids))
    got = list(conn.execute(q2))
    owners = {_owner(d) for *_, st, _, d in got if st == "pending" and d != token}
    live = live_owners(conn, owners - {"", "-"}) - {owner}
    for did, pid, step, status, mid, detail in got:
        key = Key(campaign, int(pid), int(step))
        fresh = detail == token
        if not fresh and status == "pending" and _owner(detail) in live:
            found[key] = Claim("busy", False, str(mid))
            continue
        found[key] = Claim(str(status), fresh, str(mid))
        if not fresh and status == "pending":
            stale.append(int(did))
    if stale:
        conn.execute(
            update(Delivery).where(Delivery.id.in_(stale)).values(attempts=Delivery.attempts + 1)
        )
    return {w.key: found[w.key] for w in wants}


def _owner(detail: str | None) -> str:
    """The lease token inside a claim token (``claim:<owner>:<nonce>``), or ""."""
    parts = (detail or "").split(":")
    return parts[1] if len(parts) == 3 and parts[0] == "claim" else ""


def held(conn: Connection, campaign: str | None = None) -> list[Row[Any]]:
    """Deliveries held for a person to decide (in doubt, and the channel could not tell)."""
    q = select(Delivery).where(Delivery.status == "held")
    if campaign is not None:
        q = q.where(Delivery.campaign == campaign)
    return list(conn.execute(q.order_by(Delivery.campaign, Delivery.person_id, Delivery.step)))


def decide(conn: Connection, key: Key, *, resend: bool, at: datetime, who: str) -> bool:
    """A person's decision on a held delivery: send it again, or record that it arrived.

    Returns False when no such held delivery exists (nothing is changed then).
    """
    values: dict[str, Any] = (
        {"status": "resend", "detail": f"resend decided by {who}"}
        if resend
        else {"status": "sent", "sent_at": utc(at), "detail": f"marked sent by {who}"}
    )
    res = conn.execute(
        update(Delivery)
        .where(
            Delivery.campaign == key.campaign,
            Delivery.person_id == key.person_id,
            Delivery.step == key.step,
            Delivery.status == "held",
        )
        .values(**values)
    )
    return bool(res.rowcount)


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
    """Messages sent to each person's customer since ``since``, over every campaign and every
    record of the customer (frequency caps are per customer, not per row)."""
    family = members(conn, list(dict.fromkeys(person_ids)))
    rows = sorted({r for m in family.values() for r in m})
    per_row: dict[int, int] = {}
    for part in chunks(rows, 900):
        q = (
            select(Delivery.person_id, func.count())
            .where(
                Delivery.person_id.in_(part),
                Delivery.status == "sent",
                Delivery.sent_at >= utc(since),
            )
            .group_by(Delivery.person_id)
        )
        per_row.update({int(p): int(n) for p, n in conn.execute(q)})
    out = {pid: sum(per_row.get(r, 0) for r in fam) for pid, fam in family.items()}
    return {pid: n for pid, n in out.items() if n}


def deliveries(
    conn: Connection, campaign: str
) -> dict[tuple[int, int], tuple[str, datetime | None]]:
    """(customer, step) → (status, sent_at) for one campaign.

    Rows are kept for the record that was mailed and read through the current clusters: after
    a merge the customer has every step either part had (a sent step wins over a pending or
    failed one), after a split each part keeps the steps sent to its own records.
    """
    q = select(Delivery.person_id, Delivery.step, Delivery.status, Delivery.sent_at).where(
        Delivery.campaign == campaign
    )
    got = [(int(p), int(s), str(st), at) for p, s, st, at in conn.execute(q)]
    of = customer_of(conn, [p for p, _, _, _ in got])
    rank = {"sent": 0, "pending": 1, "failed": 2}
    out: dict[tuple[int, int], tuple[str, datetime | None]] = {}
    for p, s, st, at in got:
        k = (of[p], s)
        prev = out.get(k)
        if prev is None or rank.get(st, 3) < rank.get(prev[0], 3):
            out[k] = (st, at)
    return out


def sent_addresses(conn: Connection, message_id: str) -> list[str]:
    """The addresses a campaign message with this Message-ID went to (empty: not ours).

    What makes a bounce or a complaint proof: it must quote a message Kizuna sent. Ids are
    stored as written (``<kz.…@domain>``); a quoted id is matched with or without brackets.
    """
    bare = message_id.strip().strip("<>")
    if not bare:
        return []
    q = select(Delivery.address).where(
        Delivery.message_id.in_([f"<{bare}>", bare]), Delivery.address.is_not(None)
    )
    return [str(a) for (a,) in conn.execute(q)]
