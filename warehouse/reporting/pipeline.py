"""The pipeline a manager opens: open deals by stage, owner and month, and what has gone quiet.

Amounts are summed in JPY only (a deal in another currency is counted, not converted);
the weighted pipeline is amount × probability (probabilities are 0–100, as sources give
them). Stage order is the configured one, else ascending average probability of the deals
in each stage, so リード comes before 交渉 without a list per source.

Stage conversion and time-in-stage come from ``deal_stage_history``. A history row stamped
exactly at its deal's ``created_at`` was written by an import that had no change time of its
own (a spreadsheet, say): it says when Kizuna first saw the deal, not that anyone touched it,
so it does not count as activity or as a won date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from warehouse import schema as t
from warehouse.quotes import schema as qs
from warehouse.reporting.daily import display_names
from warehouse.reporting.model import utc
from warehouse.reporting.stages import StageRow, fold_history, stage_order, terminal_stages

UNASSIGNED = 0
"""Owner key for deals nobody owns."""


@dataclass(frozen=True)
class DealLine:
    id: int
    name: str
    company: str | None
    owner: str | None
    owner_id: int | None
    team: str | None
    stage: str | None
    amount: Decimal | None
    currency: str
    probability: float | None
    expected_close: date | None
    last_touch: date | None
    idle_days: int | None
    quote_number: str | None = None
    """The deal's latest issued 見積書 (as of the report) and its 合計."""
    quote_total: Decimal | None = None

    @property
    def jpy(self) -> Decimal:
        return self.amount if self.amount is not None and self.currency == "JPY" else Decimal(0)

    @property
    def weighted(self) -> Decimal:
        p = Decimal(str(self.probability or 0))
        return (self.jpy * p / 100).quantize(Decimal(1))


@dataclass
class OwnerRow:
    owner_id: int
    name: str | None
    email: str | None
    team: str | None
    count: int = 0
    amount: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    closing: Decimal = Decimal(0)
    won: Decimal = Decimal(0)
    won_count: int = 0
    stale: int = 0


@dataclass
class Pipeline:
    as_of: datetime
    today: date
    tz: str
    stale_days: int
    this_month: date
    next_month: date
    stages: list[StageRow] = field(default_factory=list)
    owners: list[OwnerRow] = field(default_factory=list)
    teams: list[OwnerRow] = field(default_factory=list)
    closing_this_month: list[DealLine] = field(default_factory=list)
    closing_next_month: list[DealLine] = field(default_factory=list)
    overdue: list[DealLine] = field(default_factory=list)
    stale: list[DealLine] = field(default_factory=list)
    open_count: int = 0
    open_amount: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    won_count: int = 0
    won_amount: Decimal = Decimal(0)
    lost_count: int = 0
    other_currency: int = 0
    stale_count: int = 0
    overdue_count: int = 0
    closing_count: int = 0
    closing_amount: Decimal = Decimal(0)
    closing_weighted: Decimal = Decimal(0)
    next_count: int = 0
    next_amount: Decimal = Decimal(0)

    @property
    def average_deal(self) -> Decimal:
        return (
            (self.open_amount / self.open_count).quantize(Decimal(1))
            if self.open_count
            else Decimal(0)
        )


def _month_start(d: date, plus: int = 0) -> date:
    y, m = d.year, d.month + plus
    y += (m - 1) // 12
    m = (m - 1) % 12 + 1
    return date(y, m, 1)


def _last_touches(
    conn: Connection, as_of: datetime
) -> tuple[dict[int, datetime], dict[int, datetime], dict[int, datetime]]:
    """Latest mail/meeting per deal (direct link), per organization and per person.

    One aggregate over the participants gives each person's latest; a company's latest is
    the latest of its people, folded here rather than by a second join over every activity.
    """
    a = t.table(t.Activity)
    ap = t.table(t.ActivityParticipant)
    p = t.table(t.Person)
    # A bounce or an auto-reply is no touch (``timeline``): a deal whose only recent mail is
    # a vacation notice is still going stale.
    live = (
        a.c.deleted_at.is_(None),
        a.c.status != "cancelled",
        a.c.timeline.is_(True),
        a.c.occurred_at <= as_of,
    )
    direct = (
        select(a.c.deal_id, func.max(a.c.occurred_at))
        .where(a.c.deal_id.is_not(None), *live)
        .group_by(a.c.deal_id)
    )
    by_person_q = (
        select(ap.c.person_id, func.max(a.c.occurred_at))
        .join(a, a.c.id == ap.c.activity_id)
        .where(ap.c.person_id.is_not(None), *live)
        .group_by(ap.c.person_id)
    )
    by_deal = {k: utc(v) for k, v in conn.execute(direct) if v is not None}
    by_person = {k: utc(v) for k, v in conn.execute(by_person_q) if v is not None}
    by_org: dict[int, datetime] = {}
    orgs = select(p.c.id, p.c.organization_id).where(p.c.organization_id.is_not(None))
    for pid, org in conn.execute(orgs.execution_options(yield_per=5000)):
        ts = by_person.get(pid)
        if ts is not None and (org not in by_org or ts > by_org[org]):
            by_org[org] = ts
    return by_deal, by_org, by_person


def _latest_quotes(conn: Connection, as_of: datetime) -> dict[int, tuple[str, Decimal]]:
    """Deal → (number, 合計) of its latest quote revision issued by ``as_of``."""
    qq = qs.Quote
    rows = conn.execute(
        select(qq.deal_id, qq.number, qq.revision, qq.total)
        .where(qq.created_at <= as_of)
        .order_by(qq.created_at, qq.id)
    )
    return {
        int(did): (num if rev == 1 else f"{num} (第{rev}版)", Decimal(total))
        for did, num, rev, total in rows
    }


def _open_deals(conn: Connection, owner_ids: Sequence[int] | None) -> list[Any]:
    d = t.table(t.Deal)
    o = t.table(t.Organization)
    s = t.table(t.StaffUser)
    tm = t.table(t.Team)
    q = (
        select(
            d.c.id,
            d.c.name,
            d.c.stage,
            d.c.amount,
            d.c.currency,
            d.c.probability,
            d.c.expected_close,
            d.c.owner_id,
            d.c.organization_id,
            d.c.person_id,
            d.c.created_at,
            o.c.name.label("org"),
            s.c.name.label("owner_name"),
            s.c.email.label("owner_email"),
            tm.c.name.label("team"),
        )
        .select_from(
            d.outerjoin(o, o.c.id == d.c.organization_id)
            .outerjoin(s, s.c.id == d.c.owner_id)
            .outerjoin(tm, tm.c.id == s.c.team_id)
        )
        .where(d.c.status == "open", d.c.deleted_at.is_(None))
        .order_by(d.c.id)
    )
    if owner_ids is not None:
        q = q.where(d.c.owner_id.in_(list(owner_ids)))
    return list(conn.execute(q))


def _closed(conn: Connection, owner_ids: Sequence[int] | None) -> list[Any]:
    """Won and lost deals (their close date is found from the stage history by the caller)."""
    d = t.table(t.Deal)
    q = select(
        d.c.id, d.c.status, d.c.amount, d.c.currency, d.c.owner_id, d.c.expected_close
    ).where(d.c.status.in_(("won", "lost")), d.c.deleted_at.is_(None))
    if owner_ids is not None:
        q = q.where(d.c.owner_id.in_(list(owner_ids)))
    return list(conn.execute(q))


def pipeline(
    conn: Connection,
    as_of: datetime,
    tz: str = "Asia/Tokyo",
    *,
    stale_days: int = 14,
    stages: Sequence[str] = (),
    owner_ids: Sequence[int] | None = None,
    list_limit: int = 100,
    stage: str | None = None,
) -> Pipeline:
    """The whole pipeline as of ``as_of`` (optionally only some owners' deals). With
    ``stage``, only the open deals now in that stage: closed deals have left every stage, so
    the month's won and lost are not counted then."""
    as_of = utc(as_of)
    zone = ZoneInfo(tz)
    today = as_of.astimezone(zone).date()
    this_m, next_m, after = (_month_start(today, n) for n in (0, 1, 2))
    out = Pipeline(as_of, today, tz, stale_days, this_m, next_m)

    order_list = stage_order(conn, stages)
    order = {s: i for i, s in enumerate(order_list)}
    deals = [r for r in _open_deals(conn, owner_ids) if stage is None or r.stage == stage]
    open_stages = {r.stage for r in deals if r.stage is not None}
    rows = {s: StageRow(s) for s in order_list if s in open_stages}
    last_change = fold_history(conn, rows, order, terminal_stages(conn), as_of, owner_ids)
    by_deal, by_org, by_person = _last_touches(conn, as_of)
    quotes = _latest_quotes(conn, as_of)
    names = display_names(conn, [r.owner_id for r in deals if r.owner_id and not r.owner_name])

    owners: dict[int, OwnerRow] = {}
    lines: list[DealLine] = []
    for r in deals:
        touches = [
            x
            for x in (
                by_deal.get(r.id),
                by_org.get(r.organization_id),
                by_person.get(r.person_id),
                last_change.get(r.id),
            )
            if x is not None
        ]
        last = max(touches) if touches else None
        line = DealLine(
            id=r.id,
            name=r.name,
            company=r.org,
            owner=r.owner_name or names.get(r.owner_id) or r.owner_email,
            owner_id=r.owner_id,
            team=r.team,
            stage=r.stage,
            amount=r.amount,
            currency=r.currency,
            probability=r.probability,
            expected_close=r.expected_close,
            last_touch=last.astimezone(zone).date() if last else None,
            idle_days=(today - last.astimezone(zone).date()).days if last else None,
            quote_number=quotes[r.id][0] if r.id in quotes else None,
            quote_total=quotes[r.id][1] if r.id in quotes else None,
        )
        lines.append(line)
        out.open_count += 1
        if r.currency != "JPY":
            out.other_currency += 1
        out.open_amount += line.jpy
        out.weighted += line.weighted
        if r.stage in rows:
            sr = rows[r.stage]
            sr.count += 1
            sr.amount += line.jpy
            sr.weighted += line.weighted
        ow = owners.get(r.owner_id or UNASSIGNED)
        if ow is None:
            ow = owners[r.owner_id or UNASSIGNED] = OwnerRow(
                r.owner_id or UNASSIGNED, line.owner, r.owner_email, r.team
            )
        ow.count += 1
        ow.amount += line.jpy
        ow.weighted += line.weighted
        if line.expected_close and today <= line.expected_close < next_m:
            ow.closing += line.jpy
        if line.idle_days is None or line.idle_days >= stale_days:
            ow.stale += 1

    # A closed deal's date: its last real stage change, else the expected close date (an
    # import without change times has nothing better).
    for r in _closed(conn, owner_ids) if stage is None else ():
        at = last_change.get(r.id)
        when = at.astimezone(zone).date() if at is not None else r.expected_close
        if when is None or not (this_m <= when <= today):
            continue
        if r.status == "lost":
            out.lost_count += 1
            continue
        amount = r.amount if r.amount is not None and r.currency == "JPY" else Decimal(0)
        out.won_count += 1
        out.won_amount += amount
        ow = owners.get(r.owner_id or UNASSIGNED)
        if ow is not None:
            ow.won += amount
            ow.won_count += 1

    out.stages = [rows[s] for s in order_list if s in rows]
    out.owners = sorted(owners.values(), key=lambda o: (-o.weighted, o.name or o.email or ""))
    teams: dict[str, OwnerRow] = {}
    for o in out.owners:
        if o.team is None:
            continue
        tr = teams.setdefault(o.team, OwnerRow(0, o.team, None, o.team))
        for f in ("count", "amount", "weighted", "closing", "won", "won_count", "stale"):
            setattr(tr, f, getattr(tr, f) + getattr(o, f))
    out.teams = sorted(teams.values(), key=lambda o: -o.weighted)

    by_close = sorted(
        (x for x in lines if x.expected_close), key=lambda x: (x.expected_close, -x.jpy)
    )
    out.overdue = [x for x in by_close if x.expected_close and x.expected_close < today]
    out.closing_this_month = [
        x for x in by_close if x.expected_close and today <= x.expected_close < next_m
    ]
    out.closing_next_month = [
        x for x in by_close if x.expected_close and next_m <= x.expected_close < after
    ]
    stale = [x for x in lines if x.idle_days is None or x.idle_days >= stale_days]
    # Biggest money at risk first; among equals, the longest silence.
    stale.sort(key=lambda x: (-x.jpy, -(x.idle_days if x.idle_days is not None else 10**6)))
    out.stale_count, out.overdue_count = len(stale), len(out.overdue)
    this = out.closing_this_month
    out.closing_count = len(this)
    out.closing_amount = sum((x.jpy for x in this), Decimal(0))
    out.closing_weighted = sum((x.weighted for x in this), Decimal(0))
    out.next_count = len(out.closing_next_month)
    out.next_amount = sum((x.jpy for x in out.closing_next_month), Decimal(0))
    # The page lists at most ``list_limit`` of each; the counts and sums cover them all.
    out.closing_this_month = this[:list_limit]
    out.closing_next_month = out.closing_next_month[:list_limit]
    out.stale = stale[:list_limit]
    out.overdue = out.overdue[:list_limit]
    return out
