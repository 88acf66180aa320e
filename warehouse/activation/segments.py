"""Segments compiled to SQLAlchemy Core: the AST of :mod:`warehouse.activation.grammar` → SQL.

Admins write segments in the workspace file; nothing they write becomes SQL text. Every
field name was looked up in a fixed table when parsed, every operator is one of a fixed
set, and every value is a bound parameter, so the same segment runs on SQLite and
PostgreSQL and a hostile value is only ever compared, never executed. "Now" (``as_of``) is
a parameter too, so age bands and "in the last N days" are plain comparisons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Select,
    Table,
    and_,
    case,
    false,
    func,
    not_,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.sql import visitors

from warehouse import schema as t
from warehouse.activation.audience import is_live, people, utc
from warehouse.activation.grammar import (
    ATTR_PREFIXES,
    FIELDS,
    ActivityCond,
    AllCond,
    AnyCond,
    Cond,
    DealCond,
    FieldCond,
    Leaf,
    NotCond,
    RfmCond,
    parse_segment,
    parse_segments,
)
from warehouse.activation.rfm import rfm_scores
from warehouse.records import CONTACT_KINDS, MAIL_KINDS

__all__ = [
    "Context",
    "compile_condition",
    "describe",
    "explain",
    "leaves",
    "members",
    "members_query",
    "parse_segment",
    "parse_segments",
]


# ---------------------------------------------------------------------------------------
# Compiling


@dataclass
class Context:
    """What a compiled segment is evaluated against: the time, the zone, the other segments."""

    as_of: datetime
    time_zone: str = "Asia/Tokyo"
    segments: Mapping[str, Cond] = field(default_factory=dict)
    p: Table = field(default_factory=people)
    o: FromClause = field(default_factory=lambda: t.table(t.Organization).alias("o"))

    @property
    def now(self) -> datetime:
        return utc(self.as_of)

    @property
    def today(self) -> date:
        return utc(self.as_of).astimezone(ZoneInfo(self.time_zone)).date()


def _bool(expr: ColumnElement[bool]) -> ColumnElement[bool]:
    """NULL-safe truth, so ``not`` of an unknown field is true rather than unknown."""
    return case((expr, true()), else_=false()) == true()


def compile_condition(cond: Cond, ctx: Context) -> ColumnElement[bool]:
    if isinstance(cond, AllCond):
        return and_(*(compile_condition(c, ctx) for c in cond.all))
    if isinstance(cond, AnyCond):
        return or_(*(compile_condition(c, ctx) for c in cond.any))
    if isinstance(cond, NotCond):
        return not_(_bool(compile_condition(cond.not_, ctx)))
    if isinstance(cond, FieldCond):
        return _field(cond, ctx)
    if isinstance(cond, ActivityCond):
        return _activity(cond, ctx)
    if isinstance(cond, DealCond):
        return _deal(cond, ctx)
    if isinstance(cond, RfmCond):
        return _rfm(cond, ctx)
    return compile_condition(ctx.segments[cond.segment], ctx)


def members_query(cond: Cond, ctx: Context) -> Select[Any]:
    """``SELECT person.id`` of every live person the condition holds for."""
    p, o = ctx.p, ctx.o
    where = compile_condition(cond, ctx)
    # The organization is joined only when a condition reads it: the join alone costs
    # SQLite a third of a simple segment's time.
    frm = p.outerjoin(o, o.c.id == p.c.organization_id) if _reads(where, o) else p
    return select(p.c.id).select_from(frm).where(is_live(p), where).order_by(p.c.id)


def _reads(expr: ColumnElement[Any], table: FromClause) -> bool:
    return any(getattr(e, "table", None) is table for e in visitors.iterate(expr))


def members(conn: Connection, cond: Cond, ctx: Context) -> list[int]:
    return [int(x) for x in conn.execute(members_query(cond, ctx)).scalars()]


def leaves(cond: Cond) -> list[Leaf]:
    if isinstance(cond, AllCond):
        return [x for c in cond.all for x in leaves(c)]
    if isinstance(cond, AnyCond):
        return [x for c in cond.any for x in leaves(c)]
    if isinstance(cond, NotCond):
        return leaves(cond.not_)
    return [cond]


def describe(leaf: Leaf) -> str:
    """A short human reading of one condition, for previews."""
    data = leaf.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json")
    if isinstance(leaf, FieldCond):
        data = leaf.model_dump(by_alias=True, exclude_none=True, mode="json")
        data.pop("field")
        op, val = next(iter(data.items()))
        return f"{leaf.field} {op} {val}"
    return ", ".join(f"{k}={v}" for k, v in data.items())


def explain(
    conn: Connection, cond: Cond, ctx: Context, person_ids: list[int]
) -> dict[int, list[tuple[str, bool]]]:
    """For each person, which of the segment's conditions hold: the "why" of a preview."""
    parts = leaves(cond)
    if not person_ids:
        return {}
    p, o = ctx.p, ctx.o
    cols = [_bool(compile_condition(x, ctx)).label(f"c{i}") for i, x in enumerate(parts)]
    q = (
        select(p.c.id, *cols)
        .select_from(p.outerjoin(o, o.c.id == p.c.organization_id))
        .where(p.c.id.in_(person_ids))
    )
    names = [describe(x) for x in parts]
    return {
        int(row[0]): [(names[i], bool(row[i + 1])) for i in range(len(parts))]
        for row in conn.execute(q)
    }


# -- fields --------------------------------------------------------------------------------


def _like(value: str, *, prefix: bool) -> str:
    esc = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{esc}%" if prefix else f"%{esc}%"


def _staff_ids(cond: Callable[[Table, Table], ColumnElement[bool]]) -> Select[Any]:
    s = t.table(t.StaffUser)
    tm = t.table(t.Team)
    return select(s.c.id).select_from(s.outerjoin(tm, tm.c.id == s.c.team_id)).where(cond(s, tm))


def _text_ops(col: ColumnElement[Any], node: FieldCond) -> ColumnElement[bool]:
    if node.eq is not None:
        return col == node.eq
    if node.ne is not None:
        return or_(col.is_(None), col != node.ne)
    if node.in_ is not None:
        return col.in_(node.in_)
    if node.not_in is not None:
        return or_(col.is_(None), col.not_in(node.not_in))
    if node.startswith is not None:
        return col.like(_like(node.startswith, prefix=True), escape="\\")
    if node.contains is not None:
        return col.like(_like(node.contains, prefix=False), escape="\\")
    if node.between is not None:
        return col.between(node.between[0], node.between[1])
    if node.gte is not None:
        return col >= node.gte
    if node.lte is not None:
        return col <= node.lte
    assert node.exists is not None
    return col.is_not(None) if node.exists else col.is_(None)


def _field(node: FieldCond, ctx: Context) -> ColumnElement[bool]:
    p, o, name = ctx.p, ctx.o, node.field
    if name.startswith(ATTR_PREFIXES):
        base = p if name.startswith("person.") else o
        key = name.split(".attributes.", 1)[1]
        numeric = any(
            isinstance(v, int | float) and not isinstance(v, bool)
            for v in (
                node.eq,
                node.ne,
                node.gte,
                node.lte,
                *(node.in_ or []),
                *(node.between or []),
            )
        )
        item = base.c.attributes[key]
        ranged = any(v is not None for v in (node.between, node.gte, node.lte))
        col = item.as_float() if numeric or ranged else item.as_string()
        if isinstance(node.eq, bool) or isinstance(node.ne, bool):
            col = item.as_boolean()
        return _text_ops(col, node)
    if name == "person.age":
        return _age(node, ctx)
    if name in ("person.owner", "person.team", "org.owner"):
        return _staff_field(node, ctx)
    if name == "org.region":
        return _region(node, ctx)
    spec = FIELDS[name]
    assert spec.column is not None
    col = spec.column(p, o)
    if spec.kind == "time":
        if node.within_days is not None:
            return col >= ctx.now - timedelta(days=node.within_days)
        return _text_ops(col, node)
    if name == "person.email":
        return _text_ops(col, _lower(node))
    return _text_ops(col, node)


def _staff_field(node: FieldCond, ctx: Context) -> ColumnElement[bool]:
    """Owner and team are matched through the staff table, never by joining user text."""
    name = node.field
    owner = ctx.o.c.owner_id if name == "org.owner" else ctx.p.c.owner_id
    if node.exists is not None:
        if name == "person.team":
            has = owner.in_(_staff_ids(lambda s, tm: s.c.team_id.is_not(None)))
            return has if node.exists else not_(_bool(has))
        return owner.is_not(None) if node.exists else owner.is_(None)
    if node.ne is not None or node.not_in is not None:
        positive = node.model_copy(
            update={"ne": None, "not_in": None, "eq": node.ne, "in_": node.not_in}
        )
        return not_(_bool(_staff_field(positive, ctx)))
    if name == "person.team":
        return owner.in_(_staff_ids(lambda s, tm: _text_ops(tm.c.name, node)))
    return owner.in_(_staff_ids(lambda s, tm: _text_ops(s.c.email, _lower(node))))


def _lower(node: FieldCond) -> FieldCond:
    """Emails are stored lower-case; compare them that way."""

    def low(v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    return node.model_copy(
        update={
            "eq": low(node.eq),
            "ne": low(node.ne),
            "in_": [low(v) for v in node.in_] if node.in_ else node.in_,
            "not_in": [low(v) for v in node.not_in] if node.not_in else node.not_in,
            "startswith": low(node.startswith),
            "contains": low(node.contains),
        }
    )


def _region(node: FieldCond, ctx: Context) -> ColumnElement[bool]:
    """A prefecture is the start of a Japanese address: matching it is a prefix match."""
    addr = ctx.o.c.address
    if node.exists is not None:
        return addr.is_not(None) if node.exists else addr.is_(None)
    values = [str(v) for v in ([node.eq] if node.eq is not None else node.in_ or node.not_in or [])]
    hit = or_(*(addr.like(_like(v, prefix=True), escape="\\") for v in values))
    return not_(_bool(hit)) if node.not_in is not None else hit


def _age(node: FieldCond, ctx: Context) -> ColumnElement[bool]:
    """Age bands become birth-date ranges computed here, so the SQL is plain date compares."""
    bd = ctx.p.c.birth_date
    today = ctx.today

    def born_by(age: int) -> date:  # at least `age` years old today
        try:
            return today.replace(year=today.year - age)
        except ValueError:  # 29 February
            return today.replace(year=today.year - age, day=28)

    def older_than(age: int) -> ColumnElement[bool]:
        return bd <= born_by(age)

    def younger_or(age: int) -> ColumnElement[bool]:  # at most `age`
        return bd > born_by(age + 1)

    if node.exists is not None:
        return bd.is_not(None) if node.exists else bd.is_(None)
    if node.eq is not None:
        a = int(node.eq)
        return and_(older_than(a), younger_or(a))
    if node.between is not None:
        return and_(older_than(int(node.between[0])), younger_or(int(node.between[1])))
    if node.gte is not None:
        return older_than(int(node.gte))
    assert node.lte is not None
    return younger_or(int(node.lte))


# -- activity ------------------------------------------------------------------------------


def _activity_filter(kind: str, a: Table, ap: Table) -> list[ColumnElement[bool]]:
    if kind == "last_inbound_mail":
        return [a.c.kind.in_(MAIL_KINDS), a.c.direction == "inbound", ap.c.role == "from"]
    if kind == "last_outbound_mail":
        return [a.c.kind.in_(MAIL_KINDS), a.c.direction == "outbound"]
    if kind in ("last_meeting", "meetings"):
        return [a.c.kind == "meeting"]
    return [a.c.kind.in_(CONTACT_KINDS)]


def _activity(node: ActivityCond, ctx: Context) -> ColumnElement[bool]:
    """Set-based: the people with a matching activity in the window, found once by a
    time-first scan of the activity index, not an EXISTS re-run per person."""
    a = t.table(t.Activity)
    ap = t.table(t.ActivityParticipant)
    days = node.within_days if node.within_days is not None else node.not_within_days
    assert days is not None
    since = ctx.now - timedelta(days=days)
    who = (
        select(ap.c.person_id)
        .select_from(a.join(ap, ap.c.activity_id == a.c.id))
        .where(
            a.c.occurred_at >= since,
            a.c.occurred_at <= ctx.now,
            a.c.deleted_at.is_(None),
            a.c.status != "cancelled",
            a.c.timeline.is_(True),  # a bounce or an auto-reply is no contact
            ap.c.person_id.is_not(None),
            *_activity_filter(node.activity, a, ap),
        )
    )
    if node.activity == "meetings" and (node.min_count or 1) > 1:
        who = who.group_by(ap.c.person_id).having(
            func.count(func.distinct(a.c.id)) >= (node.min_count or 1)
        )
    hit = ctx.p.c.id.in_(who)
    return hit if node.within_days is not None else not_(hit)


# -- deals ---------------------------------------------------------------------------------


def _deal(node: DealCond, ctx: Context) -> ColumnElement[bool]:
    """A person's deals are their own and their organization's; both sides are found as
    sets (deal → person ids, deal → organization ids), never per person."""
    d = t.table(t.Deal)
    p = ctx.p
    if node.deal in ("open", "open_in_stage"):
        conds = [d.c.deleted_at.is_(None), d.c.status == "open"]
        if node.stage is not None:
            stages = [node.stage] if isinstance(node.stage, str) else node.stage
            conds.append(d.c.stage.in_(stages))
        return or_(
            p.c.id.in_(select(d.c.person_id).where(*conds, d.c.person_id.is_not(None))),
            p.c.organization_id.in_(
                select(d.c.organization_id).where(*conds, d.c.organization_id.is_not(None))
            ),
        )
    return _won_amount(node, ctx)


def _won_amount(node: DealCond, ctx: Context) -> ColumnElement[bool]:
    """Won amount per person in one aggregate: each won deal counted once per person it
    belongs to (their own, and every person of its organization)."""
    d = t.table(t.Deal)
    p2 = t.table(t.Person).alias("deal_person")
    since = ctx.now - timedelta(days=round(node.months * 30.44))
    won = [d.c.deleted_at.is_(None), d.c.status == "won", d.c.updated_at >= since]
    own = select(d.c.id, d.c.person_id.label("pid"), d.c.amount).where(
        *won, d.c.person_id.is_not(None)
    )
    via_org = (
        select(d.c.id, p2.c.id.label("pid"), d.c.amount)
        .select_from(d.join(p2, p2.c.organization_id == d.c.organization_id))
        .where(*won)
    )
    each = union(own, via_org).subquery("won_each")
    total = func.coalesce(func.sum(each.c.amount), 0)
    per = select(each.c.pid).group_by(each.c.pid)
    ok: list[ColumnElement[bool]] = []
    if node.gte is not None:
        ok.append(total >= node.gte)
    if node.lte is not None:
        ok.append(total <= node.lte)
    if not ok:
        return true()
    zero_ok = (node.gte is None or node.gte <= 0) and (node.lte is None or node.lte >= 0)
    if zero_ok:  # people without a won deal qualify: exclude those whose total fails
        return not_(ctx.p.c.id.in_(per.having(not_(and_(*ok)))))
    return ctx.p.c.id.in_(per.having(and_(*ok)))


# -- rfm -----------------------------------------------------------------------------------


def _rfm(node: RfmCond, ctx: Context) -> ColumnElement[bool]:
    s = rfm_scores(ctx.as_of)
    conds: list[ColumnElement[bool]] = []
    for name in ("recency", "frequency", "monetary"):
        rng = getattr(node.rfm, name)
        if rng is not None:
            conds.append(s.c[name].between(rng[0], rng[1]))
    return ctx.p.c.id.in_(select(s.c.person_id).where(*conds))


def default_as_of() -> datetime:
    return datetime.now(UTC)
