"""The segment language: its grammar, the AST it parses into, and the fields it may name.

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
Compiling the AST to SQL is :mod:`warehouse.activation.segments`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Table,
)

from kizuna.errors import ConfigError

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
