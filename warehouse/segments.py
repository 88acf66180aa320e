"""Segments: a small filter language parsed into an AST and compiled to SQLAlchemy Core.

Admins write segments in the workspace file; nothing they write becomes SQL text. Every
field name is looked up in a fixed table (:data:`FIELDS`), every operator in a fixed set, and
every value is a bound parameter, so the same segment runs on SQLite and PostgreSQL and a
hostile value is only ever compared, never executed.

Grammar (one mapping per condition; the key it starts with says what it is)::

    {all: [COND, ...]}            every condition holds
    {any: [COND, ...]}            at least one holds
    {not: COND}                   the condition does not hold (missing data counts as "not")
    {field: FIELD, OP: VALUE}     a person or organization field, see FIELDS / OPS
    {activity: KIND, within_days: N}        had such contact in the last N days
    {activity: KIND, not_within_days: N}    had none in the last N days (or never)
    {activity: meetings, within_days: N, min_count: K}
    {deal: open}                  an open deal (the person's own or their organization's)
    {deal: open_in_stage, stage: S | [S, ...]}
    {deal: won_amount, months: 12, gte: X, lte: Y}
    {rfm: {recency: [LO, HI], frequency: [LO, HI], monetary: [LO, HI]}}   quintiles 1..5
    {segment: OTHER}              membership of another segment

Errors raise ``ConfigError`` naming the file, ``segments.NAME.<path>`` and the allowed options.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Select,
    Table,
    and_,
    case,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)

from kizuna.errors import ConfigError
from warehouse import schema as t
from warehouse.audience import is_live, people, utc
from warehouse.rfm import rfm_scores

Scalar = str | int | float | bool

# ---------------------------------------------------------------------------------------
# AST


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FieldCond(_Node):
    field: str
    eq: Scalar | None = None
    ne: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1, max_length=1000)
    not_in: list[Scalar] | None = Field(default=None, min_length=1, max_length=1000)
    startswith: str | None = Field(default=None, min_length=1)
    contains: str | None = Field(default=None, min_length=1)
    between: tuple[float, float] | None = None
    gte: float | None = None
    lte: float | None = None
    exists: bool | None = None
    within_days: int | None = Field(default=None, ge=0, le=36500)


class ActivityCond(_Node):
    activity: Literal[
        "last_contact", "last_inbound_mail", "last_outbound_mail", "last_meeting", "meetings"
    ]
    within_days: int | None = Field(default=None, ge=1, le=36500)
    not_within_days: int | None = Field(default=None, ge=1, le=36500)
    min_count: int | None = Field(default=None, ge=1, le=100000)


class DealCond(_Node):
    deal: Literal["open", "open_in_stage", "won_amount"]
    stage: str | list[str] | None = None
    months: int = Field(default=12, ge=1, le=240)
    gte: Decimal | None = None
    lte: Decimal | None = None


class RfmRange(_Node):
    recency: tuple[int, int] | None = None
    frequency: tuple[int, int] | None = None
    monetary: tuple[int, int] | None = None

    @field_validator("recency", "frequency", "monetary")
    @classmethod
    def _quintile(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and not (1 <= v[0] <= v[1] <= 5):
            raise ValueError("a range of quintiles [low, high] with 1 <= low <= high <= 5")
        return v


class RfmCond(_Node):
    rfm: RfmRange


class SegmentRef(_Node):
    segment: str


@dataclass(frozen=True)
class AllCond:
    all: tuple[Cond, ...]


@dataclass(frozen=True)
class AnyCond:
    any: tuple[Cond, ...]


@dataclass(frozen=True)
class NotCond:
    not_: Cond


Leaf = FieldCond | ActivityCond | DealCond | RfmCond | SegmentRef
Cond = AllCond | AnyCond | NotCond | Leaf

# ---------------------------------------------------------------------------------------
# Fields

FieldKind = Literal["text", "number", "age", "time", "region"]

OPS: dict[FieldKind, tuple[str, ...]] = {
    "text": ("eq", "ne", "in", "not_in", "startswith", "contains", "exists"),
    "number": ("eq", "ne", "in", "not_in", "between", "gte", "lte", "exists"),
    "age": ("eq", "between", "gte", "lte", "exists"),
    "time": ("within_days", "exists"),
    "region": ("eq", "in", "not_in", "exists"),
}
ALL_OPS: tuple[str, ...] = ("eq", "ne", "in", "not_in", "startswith", "contains", "between")
ALL_OPS += ("gte", "lte", "exists", "within_days")

PREFECTURES = tuple(
    [
        "北海道",
        "青森県",
        "岩手県",
        "宮城県",
        "秋田県",
        "山形県",
        "福島県",
        "茨城県",
        "栃木県",
        "群馬県",
        "埼玉県",
        "千葉県",
        "東京都",
        "神奈川県",
        "新潟県",
        "富山県",
        "石川県",
        "福井県",
        "山梨県",
        "長野県",
        "岐阜県",
        "静岡県",
        "愛知県",
        "三重県",
        "滋賀県",
        "京都府",
        "大阪府",
        "兵庫県",
        "奈良県",
        "和歌山県",
        "鳥取県",
        "島根県",
        "岡山県",
        "広島県",
        "山口県",
        "徳島県",
        "香川県",
        "愛媛県",
        "高知県",
        "福岡県",
        "佐賀県",
        "長崎県",
        "熊本県",
        "大分県",
        "宮崎県",
        "鹿児島県",
        "沖縄県",
    ]
)


@dataclass(frozen=True)
class FieldSpec:
    kind: FieldKind
    column: Callable[[Table, FromClause], ColumnElement[Any]] | None = None
    """Picks the column from (person, organization); None for fields compiled specially."""
    help: str = ""


FIELDS: dict[str, FieldSpec] = {
    "person.gender": FieldSpec("text", lambda p, o: p.c.gender),
    "person.age": FieldSpec("age", help="whole years from birth_date"),
    "person.lifecycle_stage": FieldSpec("text", lambda p, o: p.c.lifecycle_stage),
    "person.title": FieldSpec("text", lambda p, o: p.c.title),
    "person.department": FieldSpec("text", lambda p, o: p.c.department),
    "person.email": FieldSpec("text", lambda p, o: p.c.primary_email),
    "person.owner": FieldSpec("text", help="the owner's staff email"),
    "person.team": FieldSpec("text", help="the owner's team name"),
    "person.created_at": FieldSpec("time", lambda p, o: p.c.created_at),
    "org.name": FieldSpec("text", lambda p, o: o.c.name),
    "org.industry": FieldSpec("text", lambda p, o: o.c.industry),
    "org.size": FieldSpec("text", lambda p, o: o.c.size),
    "org.domain": FieldSpec("text", lambda p, o: o.c.domain),
    "org.address": FieldSpec("text", lambda p, o: o.c.address),
    "org.region": FieldSpec("region", help="prefecture: the start of the address, e.g. 東京都"),
    "org.owner": FieldSpec("text", help="the organization owner's staff email"),
}
ATTR_PREFIXES = ("person.attributes.", "org.attributes.")
ATTR_KEY = re.compile(r"^[\w\-]{1,64}$")

LEAF_KEYS: dict[str, type[_Node]] = {
    "field": FieldCond,
    "activity": ActivityCond,
    "deal": DealCond,
    "rfm": RfmCond,
    "segment": SegmentRef,
}
COND_KEYS = ("all", "any", "not", *LEAF_KEYS)
NAME = re.compile(r"^[\w\-]{1,100}$")


def field_names() -> list[str]:
    return [*FIELDS, "person.attributes.<key>", "org.attributes.<key>"]


# ---------------------------------------------------------------------------------------
# Parsing


@dataclass
class _Where:
    file: str
    segment: str

    def error(self, path: str, problem: str, fix: str = "") -> ConfigError:
        return ConfigError(problem, file=self.file, field=f"segments.{self.segment}{path}", fix=fix)


def parse_segment(name: str, data: Any, *, file: str = "") -> Cond:
    """Parse one segment's condition; ConfigError names file, segment, field and options."""
    where = _Where(file, name)
    if not NAME.match(name):
        raise ConfigError(
            f"segment name {name!r} is not allowed",
            file=file,
            field="segments",
            fix="use letters, digits, '_' or '-' (at most 100)",
        )
    return _parse(data, "", where)


def parse_segments(section: Mapping[str, Any], *, file: str = "") -> dict[str, Cond]:
    """Parse a whole ``segments:`` section and check references between segments."""
    out = {str(n): parse_segment(str(n), d, file=file) for n, d in section.items()}
    for name, cond in out.items():
        for ref, path in _refs(cond, ""):
            if ref not in out:
                known = ", ".join(sorted(out))
                raise ConfigError(
                    f"refers to unknown segment {ref!r}",
                    file=file,
                    field=f"segments.{name}{path}.segment",
                    fix=f"use one of: {known}",
                )
        _check_cycle(name, out, [], file)
    return out


def _refs(cond: Cond, path: str) -> list[tuple[str, str]]:
    if isinstance(cond, SegmentRef):
        return [(cond.segment, path)]
    if isinstance(cond, AllCond | AnyCond):
        key = "all" if isinstance(cond, AllCond) else "any"
        items = cond.all if isinstance(cond, AllCond) else cond.any
        return [r for i, c in enumerate(items) for r in _refs(c, f"{path}.{key}[{i}]")]
    if isinstance(cond, NotCond):
        return _refs(cond.not_, f"{path}.not")
    return []


def _check_cycle(name: str, segs: Mapping[str, Cond], stack: list[str], file: str) -> None:
    if name in stack:
        chain = " → ".join([*stack[stack.index(name) :], name])
        raise ConfigError(
            f"segments refer to each other in a loop ({chain})",
            file=file,
            field=f"segments.{stack[0]}",
            fix="break the loop",
        )
    for ref, _ in _refs(segs[name], ""):
        _check_cycle(ref, segs, [*stack, name], file)


def _parse(data: Any, path: str, where: _Where) -> Cond:
    if not isinstance(data, dict) or not data:
        raise where.error(
            path,
            f"a condition must be a mapping, got {type(data).__name__}",
            fix=f"start it with one of: {', '.join(COND_KEYS)}",
        )
    keys = [k for k in data if k in COND_KEYS]
    if len(keys) != 1:
        found = ", ".join(map(str, data)) or "nothing"
        raise where.error(
            path,
            f"cannot tell what this condition is (keys: {found})",
            fix=f"use exactly one of: {', '.join(COND_KEYS)}",
        )
    key = keys[0]
    if key in ("all", "any"):
        items = data[key]
        if len(data) != 1 or not isinstance(items, list) or not items:
            raise where.error(
                f"{path}.{key}", f"`{key}` takes a non-empty list of conditions and nothing else"
            )
        parsed = tuple(_parse(c, f"{path}.{key}[{i}]", where) for i, c in enumerate(items))
        return AllCond(parsed) if key == "all" else AnyCond(parsed)
    if key == "not":
        if len(data) != 1:
            raise where.error(f"{path}.not", "`not` takes one condition and nothing else")
        return NotCond(_parse(data["not"], f"{path}.not", where))
    return _parse_leaf(key, data, path, where)


def _parse_leaf(key: str, data: dict[str, Any], path: str, where: _Where) -> Leaf:
    model = LEAF_KEYS[key]
    try:
        node = model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        options = ", ".join(f.alias or n for n, f in model.model_fields.items())
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown option {loc!r}"
        elif err["type"] == "literal_error":
            msg = f"{loc}: {msg}"
        else:
            msg = f"{loc}: {msg}"
        raise where.error(f"{path}.{key}", msg, fix=f"allowed options here: {options}") from None
    if isinstance(node, FieldCond):
        _check_field(node, f"{path}.field", where)
    elif isinstance(node, ActivityCond):
        _check_activity(node, f"{path}.activity", where)
    elif isinstance(node, DealCond):
        _check_deal(node, f"{path}.deal", where)
    elif isinstance(node, RfmCond) and node.rfm == RfmRange():
        raise where.error(f"{path}.rfm", "give at least one of recency, frequency, monetary")
    return node  # type: ignore[return-value]


def field_kind(name: str) -> FieldKind | None:
    if name in FIELDS:
        return FIELDS[name].kind
    for prefix in ATTR_PREFIXES:
        if name.startswith(prefix) and ATTR_KEY.match(name.removeprefix(prefix)):
            return "text"
    return None


def _ops_given(node: FieldCond) -> list[str]:
    return [op for op in ALL_OPS if getattr(node, "in_" if op == "in" else op) is not None]


def _check_field(node: FieldCond, path: str, where: _Where) -> None:
    kind = field_kind(node.field)
    if kind is None:
        attr = any(node.field.startswith(p) for p in ATTR_PREFIXES)
        problem = (
            f"attribute key in {node.field!r} is not allowed (letters, digits, '_', '-')"
            if attr
            else f"unknown field {node.field!r}"
        )
        raise where.error(path, problem, fix=f"use one of: {', '.join(field_names())}")
    ops = _ops_given(node)
    is_attr = node.field.startswith(ATTR_PREFIXES)
    allowed = OPS["number"] + ("startswith", "contains") if is_attr else OPS[kind]
    if len(ops) != 1:
        raise where.error(
            path,
            f"{node.field} needs exactly one operator, got {len(ops)}",
            fix=f"use one of: {', '.join(allowed)}",
        )
    if ops[0] not in allowed:
        raise where.error(
            path,
            f"operator {ops[0]!r} does not apply to {node.field}",
            fix=f"use one of: {', '.join(allowed)}",
        )
    texts = [node.eq, node.ne, node.startswith, node.contains, *(node.in_ or [])]
    for v in [*texts, *(node.not_in or [])]:
        if isinstance(v, str) and any(ord(ch) < 32 and ch not in "\t\n" for ch in v):
            raise where.error(path, "a value contains a control character", fix="remove it")
    if kind == "region":
        for v in [node.eq, *(node.in_ or []), *(node.not_in or [])]:
            if v is not None and v not in PREFECTURES:
                raise where.error(
                    path,
                    f"{v!r} is not a prefecture",
                    fix=f"write it as in an address: {', '.join(PREFECTURES[:5])} … {PREFECTURES[-1]}",
                )
    if node.between is not None and node.between[0] > node.between[1]:
        raise where.error(path, "between takes [low, high] with low <= high")


def _check_activity(node: ActivityCond, path: str, where: _Where) -> None:
    windows = [w for w in (node.within_days, node.not_within_days) if w is not None]
    if len(windows) != 1:
        raise where.error(
            path, "give exactly one of within_days or not_within_days", fix="e.g. within_days: 30"
        )
    if node.activity == "meetings":
        if node.within_days is None:
            raise where.error(path, "meetings takes within_days (and optionally min_count)")
    elif node.min_count is not None:
        raise where.error(path, "min_count applies only to `activity: meetings`")


def _check_deal(node: DealCond, path: str, where: _Where) -> None:
    stages = [node.stage] if isinstance(node.stage, str) else node.stage or []
    if any("\x00" in x for x in stages):
        raise where.error(path, "a stage name contains a control character", fix="remove it")
    if node.deal == "open_in_stage" and not node.stage:
        raise where.error(path, "open_in_stage needs `stage:` (a name or a list of names)")
    if node.deal != "open_in_stage" and node.stage is not None:
        raise where.error(path, "`stage` applies only to open_in_stage")
    if node.deal == "won_amount" and node.gte is None and node.lte is None:
        raise where.error(path, "won_amount needs gte and/or lte", fix="e.g. gte: 1000000")
    if node.deal != "won_amount" and (node.gte is not None or node.lte is not None):
        raise where.error(path, "gte/lte apply only to won_amount")


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
    return (
        select(p.c.id)
        .select_from(p.outerjoin(o, o.c.id == p.c.organization_id))
        .where(is_live(p), compile_condition(cond, ctx))
        .order_by(p.c.id)
    )


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

CONTACT_KINDS = ("email", "meeting", "call")


def _activity_filter(kind: str, a: Table, ap: Table) -> list[ColumnElement[bool]]:
    if kind == "last_inbound_mail":
        return [a.c.kind == "email", a.c.direction == "inbound", ap.c.role == "from"]
    if kind == "last_outbound_mail":
        return [a.c.kind == "email", a.c.direction == "outbound"]
    if kind in ("last_meeting", "meetings"):
        return [a.c.kind == "meeting"]
    return [a.c.kind.in_(CONTACT_KINDS)]


def _activity(node: ActivityCond, ctx: Context) -> ColumnElement[bool]:
    a = t.table(t.Activity)
    ap = t.table(t.ActivityParticipant)
    days = node.within_days if node.within_days is not None else node.not_within_days
    assert days is not None
    since = ctx.now - timedelta(days=days)
    q_where = [
        ap.c.person_id == ctx.p.c.id,
        a.c.deleted_at.is_(None),
        a.c.status != "cancelled",
        a.c.occurred_at >= since,
        a.c.occurred_at <= ctx.now,
        *_activity_filter(node.activity, a, ap),
    ]
    joined = ap.join(a, a.c.id == ap.c.activity_id)
    if node.activity == "meetings" and (node.min_count or 1) > 1:
        n = (
            select(func.count(func.distinct(a.c.id)))
            .select_from(joined)
            .where(*q_where)
            .scalar_subquery()
        )
        return n >= (node.min_count or 1)
    found = exists(select(a.c.id).select_from(joined).where(*q_where))
    return found if node.within_days is not None else not_(found)


# -- deals ---------------------------------------------------------------------------------


def _deal_of(d: Table, ctx: Context) -> ColumnElement[bool]:
    """A person's deals: their own, and their organization's."""
    return and_(
        d.c.deleted_at.is_(None),
        or_(
            d.c.person_id == ctx.p.c.id,
            and_(d.c.organization_id.is_not(None), d.c.organization_id == ctx.p.c.organization_id),
        ),
    )


def _deal(node: DealCond, ctx: Context) -> ColumnElement[bool]:
    d = t.table(t.Deal)
    if node.deal in ("open", "open_in_stage"):
        conds = [_deal_of(d, ctx), d.c.status == "open"]
        if node.stage is not None:
            stages = [node.stage] if isinstance(node.stage, str) else node.stage
            conds.append(d.c.stage.in_(stages))
        return exists(select(d.c.id).where(*conds))
    since = ctx.now - timedelta(days=round(node.months * 30.44))
    total = (
        select(func.coalesce(func.sum(d.c.amount), 0))
        .where(_deal_of(d, ctx), d.c.status == "won", d.c.updated_at >= since)
        .scalar_subquery()
    )
    conds = []
    if node.gte is not None:
        conds.append(total >= node.gte)
    if node.lte is not None:
        conds.append(total <= node.lte)
    return and_(*conds)


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
