"""Reminder rules for sales staff: find the conditions, keep one reminder per condition.

Each rule turns the warehouse into a list of :class:`Condition` s, each identified by
(rule, subject, instance). The instance names *this occurrence* of the condition — the date
a deal went quiet, the meeting, the close date — so a reminder is sent once per occurrence,
resolved when the condition clears (a mail went out, the deal moved), and a new occurrence
later (the deal goes quiet again) is a new reminder.

Business days follow the Japanese calendar: weekends and national holidays (``jpholiday``)
do not count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jpholiday
from sqlalchemy import Connection, func, select

from warehouse import schema as t
from warehouse.activation.audience import utc
from warehouse.records import CONTACT_KINDS, MAIL_KINDS
from warehouse.write.upsert import chunks

CONTACT = CONTACT_KINDS


@dataclass(frozen=True)
class Condition:
    rule: str
    subject_kind: str
    subject_id: int
    instance: str
    owner_id: int | None
    title: str
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.subject_kind, self.subject_id, self.instance)


def is_business_day(d: date) -> bool:
    return d.weekday() < 5 and not jpholiday.is_holiday(d)


def add_business_days(d: date, n: int) -> date:
    """The n-th business day after ``d``."""
    out = d
    while n > 0:
        out += timedelta(days=1)
        if is_business_day(out):
            n -= 1
    return out


def _local(ts: datetime, tz: str) -> date:
    return utc(ts).astimezone(ZoneInfo(tz)).date()


def _org(row_table: Any) -> Any:
    """The name of a row's organization, for the reminder's "customer" (a scalar subquery)."""
    o = t.table(t.Organization)
    return select(o.c.name).where(o.c.id == row_table.c.organization_id).scalar_subquery()


# -- rules ---------------------------------------------------------------------------------


def deal_idle(conn: Connection, rule: str, days: int, as_of: datetime) -> list[Condition]:
    """Open deals with no activity and no stage change for ``days`` days."""
    d = t.table(t.Deal)
    a = t.table(t.Activity)
    h = t.table(t.DealStageHistory)
    last_act = (
        select(func.max(a.c.occurred_at))
        .where(
            a.c.deal_id == d.c.id,
            a.c.deleted_at.is_(None),
            a.c.timeline.is_(True),
            a.c.status != "cancelled",
            a.c.occurred_at <= utc(as_of),
        )
        .scalar_subquery()
    )
    last_stage = select(func.max(h.c.entered_at)).where(h.c.deal_id == d.c.id).scalar_subquery()
    q = select(
        d.c.id, d.c.name, d.c.stage, d.c.owner_id, d.c.created_at, last_act, last_stage, _org(d)
    ).where(d.c.status == "open", d.c.deleted_at.is_(None))
    cut = utc(as_of) - timedelta(days=days)
    out = []
    for did, name, stage, owner, created, act, moved, customer in conn.execute(q):
        touch = max(utc(x) for x in (created, act, moved) if x is not None)
        if touch < cut:
            idle = (utc(as_of) - touch).days
            out.append(
                Condition(
                    rule,
                    "deal",
                    int(did),
                    f"since:{touch.date().isoformat()}",
                    owner,
                    f"案件「{name}」に{idle}日間動きがありません / deal '{name}' idle {idle} days",
                    {
                        "deal": name,
                        "customer": customer,
                        "stage": stage,
                        "last_touch": touch.isoformat(),
                        "days": idle,
                    },
                )
            )
    return out


def close_date(
    conn: Connection, rule: str, within_days: int, as_of: datetime, tz: str
) -> list[Condition]:
    """Open deals whose expected close date has passed or is within ``within_days``."""
    d = t.table(t.Deal)
    today = _local(as_of, tz)
    q = select(d.c.id, d.c.name, d.c.stage, d.c.owner_id, d.c.expected_close, _org(d)).where(
        d.c.status == "open",
        d.c.deleted_at.is_(None),
        d.c.expected_close.is_not(None),
        d.c.expected_close <= today + timedelta(days=within_days),
    )
    out = []
    for did, name, stage, owner, close, customer in conn.execute(q):
        passed = close < today
        kind = "passed" if passed else "near"
        title = (
            f"案件「{name}」の受注予定日({close})を過ぎています / close date passed"
            if passed
            else f"案件「{name}」の受注予定日({close})が近づいています / close date near"
        )
        out.append(
            Condition(
                rule,
                "deal",
                int(did),
                f"{kind}:{close.isoformat()}",
                owner,
                title,
                {
                    "deal": name,
                    "customer": customer,
                    "stage": stage,
                    "expected_close": close.isoformat(),
                    "kind": kind,
                },
            )
        )
    return out


def meeting_no_followup(
    conn: Connection,
    rule: str,
    business_days: int,
    lookback_days: int,
    as_of: datetime,
    tz: str,
) -> list[Condition]:
    """Meetings with customers and no outbound mail to any of them within N business days."""
    a = t.table(t.Activity)
    ap = t.table(t.ActivityParticipant)
    p = t.table(t.Person)
    now = utc(as_of)
    since = now - timedelta(days=lookback_days)
    end = func.coalesce(a.c.ends_at, a.c.occurred_at)
    meetings = conn.execute(
        select(a.c.id, a.c.subject, a.c.occurred_at, end.label("ended")).where(
            a.c.kind == "meeting",
            a.c.status != "cancelled",
            a.c.deleted_at.is_(None),
            a.c.occurred_at >= since,
            end <= now,
        )
    ).all()
    if not meetings:
        return []
    ids = [int(m.id) for m in meetings]
    people: dict[int, set[int]] = defaultdict(set)
    staff: dict[int, list[tuple[str, int]]] = defaultdict(list)
    owners: dict[int, int | None] = {}
    customers: dict[int, str] = {}
    for part in chunks(ids, 900):
        rows = conn.execute(
            select(
                ap.c.activity_id,
                ap.c.person_id,
                ap.c.staff_user_id,
                ap.c.role,
                p.c.owner_id,
                func.coalesce(_org(p), p.c.full_name),
            )
            .select_from(ap.outerjoin(p, p.c.id == ap.c.person_id))
            .where(ap.c.activity_id.in_(part))
        )
        for aid, pid, sid, role, owner, who in rows:
            if pid is not None:
                people[int(aid)].add(int(pid))
                owners.setdefault(int(aid), owner)
                if who:
                    customers.setdefault(int(aid), str(who))
            if sid is not None:
                staff[int(aid)].append((str(role), int(sid)))
    sent = _outbound_mail(conn, {x for s in people.values() for x in s}, since, now)
    today = _local(now, tz)
    out = []
    for m in meetings:
        who = people.get(int(m.id))
        if not who:
            continue  # an internal meeting: nobody to follow up with
        ended = utc(m.ended)
        due = add_business_days(_local(ended, tz), business_days)
        if today <= due:
            continue
        if any(utc(ts) >= ended for pid in who for ts in sent.get(pid, [])):
            continue
        roles = dict(staff.get(int(m.id), []))
        owner = roles.get("organizer") or next(iter(roles.values()), None) or owners.get(int(m.id))
        title = f"商談「{m.subject or ''}」のフォローアップメールが未送信です / no follow-up yet"
        out.append(
            Condition(
                rule,
                "activity",
                int(m.id),
                f"meeting:{int(m.id)}",
                owner,
                title,
                {
                    "meeting": m.subject,
                    "customer": customers.get(int(m.id)),
                    "held": ended.isoformat(),
                    "due": due.isoformat(),
                },
            )
        )
    return out


def _outbound_mail(
    conn: Connection, person_ids: set[int], since: datetime, until: datetime
) -> dict[int, list[datetime]]:
    a = t.table(t.Activity)
    ap = t.table(t.ActivityParticipant)
    out: dict[int, list[datetime]] = defaultdict(list)
    for part in chunks(sorted(person_ids), 900):
        q = (
            select(ap.c.person_id, a.c.occurred_at)
            .select_from(ap.join(a, a.c.id == ap.c.activity_id))
            .where(
                ap.c.person_id.in_(part),
                a.c.kind.in_(MAIL_KINDS),
                a.c.direction == "outbound",
                a.c.timeline.is_(True),
                a.c.deleted_at.is_(None),
                a.c.occurred_at >= since,
                a.c.occurred_at <= until,
            )
        )
        for pid, ts in conn.execute(q):
            out[int(pid)].append(ts)
    return out


def key_account_quiet(
    conn: Connection,
    rule: str,
    days: int,
    attribute: str,
    values: Sequence[str],
    as_of: datetime,
) -> list[Condition]:
    """Key accounts (an organization attribute in ``values``) nobody contacted for N days."""
    o = t.table(t.Organization)
    a = t.table(t.Activity)
    ap = t.table(t.ActivityParticipant)
    p = t.table(t.Person)
    attr = o.c.attributes[attribute].as_string()
    last = (
        select(func.max(a.c.occurred_at))
        .select_from(ap.join(a, a.c.id == ap.c.activity_id).join(p, p.c.id == ap.c.person_id))
        .where(
            p.c.organization_id == o.c.id,
            a.c.kind.in_(CONTACT),
            a.c.timeline.is_(True),
            a.c.status != "cancelled",
            a.c.deleted_at.is_(None),
            a.c.occurred_at <= utc(as_of),
        )
        .scalar_subquery()
    )
    match = attr.in_(list(values)) if values else attr.is_not(None)
    q = select(o.c.id, o.c.name, o.c.owner_id, last).where(o.c.deleted_at.is_(None), match)
    cut = utc(as_of) - timedelta(days=days)
    out = []
    for oid, name, owner, last_at in conn.execute(q):
        if last_at is not None and utc(last_at) >= cut:
            continue
        since = utc(last_at).date().isoformat() if last_at is not None else "never"
        out.append(
            Condition(
                rule,
                "organization",
                int(oid),
                f"since:{since}",
                owner,
                f"重要顧客「{name}」と{days}日以上接点がありません / key account quiet",
                {"organization": name, "customer": name, "last_contact": since, "days": days},
            )
        )
    return out
