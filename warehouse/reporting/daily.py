"""What a sales rep did on one day, read back from the warehouse for the daily report (日報).

Days are calendar days in the company's time zone; timestamps are stored in UTC, so a
meeting at 08:30 JST on the 5th (23:30 UTC on the 4th) belongs to the 5th. Activities reach
customers through their participants: participant → person → organization. Deals reach a
day through ``deal_stage_history``: the first row of a deal is its arrival, later rows are
stage changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, select

from warehouse import schema as t
from warehouse.activation.reminders import add_business_days
from warehouse.records import MAIL_KINDS
from warehouse.reporting.model import (
    Attendee,
    DailyData,
    Day,
    DealChange,
    DealRef,
    FollowUp,
    MailCustomer,
    MailThread,
    MeetingItem,
    Staff,
    day_window,
    utc,
)

IN_CHUNK = 900
FOLLOW_UP_DAYS = 14
"""How far back a meeting still waits for a follow-up mail."""


# -- who ----------------------------------------------------------------------------------


def live_activity(a: Any) -> Any:
    """Activities that happened and count: not deleted, not cancelled, on the timeline."""
    return and_(a.c.deleted_at.is_(None), a.c.status != "cancelled", a.c.timeline.is_(True))


def display_names(conn: Connection, staff_ids: Sequence[int]) -> dict[int, str]:
    """Names for staff users the sources gave no name: how their mail headers spell them."""
    ap = t.table(t.ActivityParticipant)
    out: dict[int, str] = {}
    ids = sorted(set(staff_ids))
    for i in range(0, len(ids), IN_CHUNK):
        q = (
            select(ap.c.staff_user_id, func.max(ap.c.name))
            .where(ap.c.staff_user_id.in_(ids[i : i + IN_CHUNK]), ap.c.name.is_not(None))
            .group_by(ap.c.staff_user_id)
        )
        out.update({sid: name for sid, name in conn.execute(q) if name})
    return out


# -- building blocks ------------------------------------------------------------------------


def _activities(
    conn: Connection, staff_id: int, start: datetime, end: datetime, kind: str
) -> list[Any]:
    a = t.table(t.Activity)
    ap = t.table(t.ActivityParticipant)
    mine = select(ap.c.activity_id).where(ap.c.staff_user_id == staff_id)
    q = (
        select(a)
        .where(
            a.c.id.in_(mine),
            a.c.kind.in_(MAIL_KINDS) if kind == "email" else a.c.kind == kind,
            a.c.occurred_at >= start,
            a.c.occurred_at < end,
            live_activity(a),
        )
        .order_by(a.c.occurred_at, a.c.id)
    )
    return list(conn.execute(q))


def _person_label(row: Any) -> str | None:
    if row.full_name:
        return str(row.full_name)
    parts = [p for p in (row.family_name, row.given_name) if p]
    return " ".join(parts) if parts else row.pt_name


def participants(conn: Connection, activity_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Every participant of the activities with person, company and staff names resolved."""
    ap = t.table(t.ActivityParticipant)
    p = t.table(t.Person)
    o = t.table(t.Organization)
    s = t.table(t.StaffUser)
    out: dict[int, list[Any]] = defaultdict(list)
    ids = sorted(set(activity_ids))
    for i in range(0, len(ids), IN_CHUNK):
        q = (
            select(
                ap.c.activity_id,
                ap.c.email,
                ap.c.role,
                ap.c.name.label("pt_name"),
                ap.c.person_id,
                ap.c.staff_user_id,
                p.c.full_name,
                p.c.family_name,
                p.c.given_name,
                p.c.organization_id,
                o.c.name.label("org_name"),
                s.c.name.label("staff_name"),
            )
            .select_from(
                ap.outerjoin(p, p.c.id == ap.c.person_id)
                .outerjoin(o, o.c.id == p.c.organization_id)
                .outerjoin(s, s.c.id == ap.c.staff_user_id)
            )
            .where(ap.c.activity_id.in_(ids[i : i + IN_CHUNK]))
            .order_by(ap.c.activity_id, ap.c.role, ap.c.email)
        )
        for r in conn.execute(q):
            out[r.activity_id].append(r)
    return out


def _attendee(r: Any) -> Attendee:
    if r.staff_user_id is not None:
        return Attendee(r.email, r.staff_name or r.pt_name, staff_user_id=r.staff_user_id)
    return Attendee(
        r.email,
        _person_label(r),
        company=r.org_name,
        person_id=r.person_id,
        organization_id=r.organization_id,
    )


def _split(rows: Sequence[Any]) -> tuple[list[Attendee], list[Attendee]]:
    """Customers and staff of one activity, each person once whatever their roles."""
    customers: dict[str, Attendee] = {}
    staff: dict[str, Attendee] = {}
    for r in rows:
        if r.staff_user_id is not None:
            staff.setdefault(r.email, _attendee(r))
        elif r.person_id is not None:
            customers.setdefault(r.email, _attendee(r))
    return list(customers.values()), list(staff.values())


def deal_refs(conn: Connection, deal_ids: Iterable[int]) -> dict[int, DealRef]:
    d = t.table(t.Deal)
    o = t.table(t.Organization)
    out: dict[int, DealRef] = {}
    ids = sorted(set(deal_ids))
    for i in range(0, len(ids), IN_CHUNK):
        q = (
            select(d.c.id, d.c.name, d.c.stage, d.c.amount, d.c.currency, o.c.name.label("org"))
            .select_from(d.outerjoin(o, o.c.id == d.c.organization_id))
            .where(d.c.id.in_(ids[i : i + IN_CHUNK]))
        )
        for r in conn.execute(q):
            out[r.id] = DealRef(r.id, r.name, r.stage, r.amount, r.currency, r.org)
    return out


def _open_deals_by_org(conn: Connection, org_ids: Iterable[int]) -> dict[int, list[int]]:
    d = t.table(t.Deal)
    out: dict[int, list[int]] = defaultdict(list)
    ids = sorted(set(org_ids))
    for i in range(0, len(ids), IN_CHUNK):
        q = (
            select(d.c.organization_id, d.c.id)
            .where(
                d.c.organization_id.in_(ids[i : i + IN_CHUNK]),
                d.c.status == "open",
                d.c.deleted_at.is_(None),
            )
            .order_by(d.c.organization_id, d.c.amount.desc(), d.c.id)
        )
        for org, did in conn.execute(q):
            out[org].append(did)
    return out


def meetings(
    conn: Connection,
    staff_id: int,
    start: datetime,
    end: datetime,
    tz: str,
    *,
    with_deals: bool = True,
) -> list[MeetingItem]:
    """The rep's meetings in [start, end) with who came and which open deals they concern.

    A meeting linked to a deal shows that deal; otherwise the open deals of the companies
    whose people attended (at most three each), so the rep sees what the meeting was for.
    """
    rows = _activities(conn, staff_id, start, end, "meeting")
    parts = participants(conn, [r.id for r in rows])
    split = {r.id: _split(parts.get(r.id, [])) for r in rows}
    orgs = {a.organization_id for c, _ in split.values() for a in c if a.organization_id}
    by_org = _open_deals_by_org(conn, orgs) if with_deals else {}
    wanted: set[int] = {r.deal_id for r in rows if r.deal_id} if with_deals else set()
    for ids in by_org.values():
        wanted.update(ids[:3])
    refs = deal_refs(conn, wanted)
    zone = ZoneInfo(tz)
    out: list[MeetingItem] = []
    for r in rows:
        customers, staff = split[r.id]
        if r.deal_id and r.deal_id in refs:
            deals = [refs[r.deal_id]]
        else:
            seen: dict[int, DealRef] = {}
            for c in customers:
                for did in by_org.get(c.organization_id or -1, [])[:3]:
                    seen.setdefault(did, refs[did])
            deals = list(seen.values())
        out.append(
            MeetingItem(
                activity_id=r.id,
                start=utc(r.occurred_at).astimezone(zone),
                end=utc(r.ends_at).astimezone(zone) if r.ends_at else None,
                subject=r.subject,
                location=r.location,
                customers=customers,
                staff=staff,
                deals=deals,
            )
        )
    return out


def mail(conn: Connection, staff_id: int, day: Day) -> tuple[list[MailCustomer], int]:
    """The rep's mail with customers that day, by customer then thread; plus internal mail.

    Sent or received is from the rep's side: a mail the rep is ``from`` is sent, any other
    mail they are on is received.
    """
    rows = _activities(conn, staff_id, day.start, day.end, "email")
    parts = participants(conn, [r.id for r in rows])
    customers: dict[tuple[str, int | str], MailCustomer] = {}
    threads: dict[tuple[tuple[str, int | str], str], MailThread] = {}
    internal = 0
    for r in rows:
        ps = parts.get(r.id, [])
        sent = any(p.staff_user_id == staff_id and p.role == "from" for p in ps)
        ext = [_attendee(p) for p in ps if p.staff_user_id is None and p.person_id is not None]
        if not ext:
            internal += 1
            continue
        # The customer is the first outside person: the sender of a received mail, else
        # the first addressee (participants come ordered by role: bcc, cc, from, to).
        order = {"from": 0, "to": 1, "cc": 2, "bcc": 3}
        main = min(
            (p for p in ps if p.staff_user_id is None and p.person_id is not None),
            key=lambda p: (order.get(p.role, 9), p.email),
        )
        who = _attendee(main)
        ckey: tuple[str, int | str] = (
            ("org", who.organization_id) if who.organization_id else ("person", who.email)
        )
        cust = customers.get(ckey)
        if cust is None:
            cust = customers[ckey] = MailCustomer(who.company or who.label, who.organization_id)
        tkey = (ckey, r.thread_key or r.key)
        th = threads.get(tkey)
        if th is None:
            th = threads[tkey] = MailThread(r.thread_key or r.key, r.subject, [])
            cust.threads.append(th)
        for a in ext:
            if all(a.email != c.email for c in th.counterparts):
                th.counterparts.append(a)
        if sent:
            th.sent += 1
        else:
            th.received += 1
        when = day.local(r.occurred_at)
        th.first = th.first or when
        th.last = when
    ordered = sorted(customers.values(), key=lambda c: (-(c.sent + c.received), c.label))
    return ordered, internal


def deal_changes(conn: Connection, staff_id: int, day: Day) -> list[DealChange]:
    """Stage changes and new deals of the rep's deals that day, with the stage left behind."""
    d = t.table(t.Deal)
    h = t.table(t.DealStageHistory)
    touched = (
        select(h.c.deal_id)
        .join(d, d.c.id == h.c.deal_id)
        .where(
            d.c.owner_id == staff_id,
            d.c.deleted_at.is_(None),
            h.c.entered_at >= day.start,
            h.c.entered_at < day.end,
        )
        .distinct()
    )
    deal_ids = [i for (i,) in conn.execute(touched)]
    if not deal_ids:
        return []
    refs = deal_refs(conn, deal_ids)
    out: list[DealChange] = []
    for i in range(0, len(deal_ids), IN_CHUNK):
        q = (
            select(h.c.deal_id, h.c.stage, h.c.entered_at)
            .where(h.c.deal_id.in_(deal_ids[i : i + IN_CHUNK]), h.c.entered_at < day.end)
            .order_by(h.c.deal_id, h.c.entered_at, h.c.id)
        )
        prev: dict[int, str | None] = {}
        for did, stage, at in conn.execute(q):
            at = utc(at)
            if at >= day.start:
                out.append(
                    DealChange(refs[did], day.local(at), prev.get(did), stage, did not in prev)
                )
            prev[did] = stage
    return sorted(out, key=lambda c: (c.at, c.deal.id))


def follow_ups(
    conn: Connection, staff_id: int, day: Day, window_days: int = FOLLOW_UP_DAYS
) -> list[FollowUp]:
    """Meetings of the last ``window_days`` with customers who got no mail from us since.

    Any outbound mail to any of the meeting's customers after it began counts as the
    follow-up, whoever on the team sent it.
    """
    since = day.end - timedelta(days=window_days)
    found = meetings(conn, staff_id, since, day.end, day.tz, with_deals=False)
    items = [m for m in found if m.customers]
    if not items:
        return []
    persons = sorted({c.person_id for m in items for c in m.customers if c.person_id})
    a = t.table(t.Activity)
    ap = t.table(t.ActivityParticipant)
    last_mail: dict[int, datetime] = {}
    for i in range(0, len(persons), IN_CHUNK):
        q = (
            select(ap.c.person_id, func.max(a.c.occurred_at))
            .join(a, a.c.id == ap.c.activity_id)
            .where(
                ap.c.person_id.in_(persons[i : i + IN_CHUNK]),
                a.c.kind.in_(MAIL_KINDS),
                a.c.direction == "outbound",
                a.c.deleted_at.is_(None),
                a.c.timeline.is_(True),
                a.c.occurred_at >= since,
                a.c.occurred_at < day.end,
            )
            .group_by(ap.c.person_id)
        )
        last_mail.update({pid: utc(ts) for pid, ts in conn.execute(q)})
    out: list[FollowUp] = []
    for m in items:
        answered = any(
            c.person_id in last_mail and last_mail[c.person_id] > m.start for c in m.customers
        )
        if not answered:
            out.append(FollowUp(m, (day.date - m.start.date()).days))
    return out


def daily(
    conn: Connection, staff: Staff, d: date, tz: str, *, follow_up_days: int = FOLLOW_UP_DAYS
) -> DailyData:
    """Everything the 日報 of ``staff`` for ``d`` shows, read in one connection."""
    day = day_window(d, tz)
    customers, internal = mail(conn, staff.id, day)
    nxt = add_business_days(d, 1)
    nwin = day_window(nxt, tz)
    return DailyData(
        staff=staff,
        day=day,
        meetings=meetings(conn, staff.id, day.start, day.end, tz),
        mail=customers,
        internal_mail=internal,
        deal_changes=deal_changes(conn, staff.id, day),
        follow_ups=follow_ups(conn, staff.id, day, follow_up_days),
        next_day=nxt,
        next_meetings=meetings(conn, staff.id, nwin.start, nwin.end, tz),
    )
