"""The segment language: anything outside the grammar is a clear error, and no value or name an
admin writes ever reaches SQL except as a bound parameter."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, inspect, select

from kizuna.errors import ConfigError
from tests.support.push.push_seed import AS_OF, seed_people
from warehouse import schema as t
from warehouse.activation.segments import (
    Context,
    members,
    members_query,
    parse_segment,
    parse_segments,
)

HOSTILE = [
    "'; DROP TABLE person; --",
    '" OR 1=1 --',
    "ロバート'); DROP TABLE Students;--",
    "\\",
    "%",
    "_",
    "$1",
    ":gender",
    "}}{{",
    "a' || (SELECT sqlite_version()) || '",
    "😀 𠮷野家",
]


def error_of(data: Any, name: str = "vip") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_segments({name: data}, file="kizuna.yaml")
    return info.value


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (
            {"all": [{"field": "person.gender", "eq": "f"}, {"field": "person.salary", "gte": 1}]},
            "segments.vip.all[1].field",
            ["unknown field 'person.salary'", "person.gender", "org.region"],
        ),
        (
            {"field": "person.age", "startswith": "3"},
            "segments.vip.field",
            ["'startswith' does not apply to person.age", "between"],
        ),
        (
            {"field": "person.gender", "eq": "f", "ne": "m"},
            "segments.vip.field",
            ["exactly one operator", "eq, ne, in"],
        ),
        ({"field": "person.gender", "like": "f%"}, "segments.vip.field", ["unknown option 'like'"]),
        ({"sql": "select 1"}, "segments.vip", ["cannot tell", "all, any, not, field"]),
        ("person.gender = 'f'", "segments.vip", ["must be a mapping", "all, any, not"]),
        ({"all": []}, "segments.vip.all", ["non-empty list"]),
        (
            {"activity": "last_fax", "within_days": 3},
            "segments.vip.activity",
            ["last_contact", "last_inbound_mail"],
        ),
        ({"activity": "last_contact"}, "segments.vip.activity", ["within_days"]),
        ({"rfm": {"recency": [0, 9]}}, "segments.vip.rfm", ["1 <= low <= high <= 5"]),
        ({"deal": "open_in_stage"}, "segments.vip.deal", ["needs `stage:`"]),
        ({"field": "org.region", "eq": "Tokyo"}, "segments.vip.field", ["not a prefecture"]),
        (
            {"field": 'person.attributes.x"; DROP TABLE person', "eq": 1},
            "segments.vip.field",
            ["attribute key", "not allowed"],
        ),
        ({"segment": "nobody"}, "segments.vip.segment", ["unknown segment 'nobody'"]),
        ({"field": "person.gender", "eq": "a\x00b"}, "segments.vip.field", ["control character"]),
    ],
)
def test_grammar_violations_name_file_segment_field_and_options(
    data: Any, field: str, words: list[str]
) -> None:
    err = error_of(data)
    assert err.file == "kizuna.yaml"
    assert err.field == field
    for w in words:
        assert w in str(err), str(err)


def test_segment_loops_and_bad_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match="loop"):
        parse_segments({"a": {"segment": "b"}, "b": {"segment": "a"}}, file="k.yaml")
    with pytest.raises(ConfigError, match="not allowed"):
        parse_segments({"a b; --": {"field": "person.gender", "eq": "f"}}, file="k.yaml")


def _hostile_conditions(value: str) -> list[dict[str, Any]]:
    return [
        {"field": "person.department", "eq": value},
        {"field": "person.gender", "in": [value, "x"]},
        {"field": "person.owner", "eq": value},
        {"field": "person.team", "ne": value},
        {"field": "org.name", "startswith": value},
        {"field": "org.name", "contains": value},
        {"field": "person.attributes.plan", "eq": value},
        {"field": "org.attributes.tier", "not_in": [value]},
        {"deal": "open_in_stage", "stage": value},
    ]


def test_hostile_values_are_bound_parameters_never_sql(engine: Engine) -> None:
    ids = seed_people(engine)
    with engine.begin() as conn:  # one person whose department literally is each hostile value
        for i, v in enumerate(HOSTILE):
            conn.execute(
                insert(t.Person),
                {
                    "department": v,
                    "attributes": {"plan": v},
                    "created_at": AS_OF,
                    "updated_at": AS_OF,
                    "primary_email": f"h{i}@x.example",
                },
            )
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(t.Person)).scalar_one()
    ctx = Context(as_of=AS_OF)
    for v in HOSTILE:
        for cond in _hostile_conditions(v):
            parsed = parse_segment("h", cond)
            sql = str(members_query(parsed, ctx).compile(dialect=engine.dialect))
            assert v not in sql or v in ("%", "_", "\\", "$1"), (v, sql)
            with engine.connect() as conn:
                found = members(conn, parsed, ctx)
            if (
                cond.get("field") in ("person.department", "person.attributes.plan")
                and "eq" in cond
            ):
                assert len(found) == 1, (v, cond)  # matched literally, exactly once
        # LIKE wildcards in a value are literal characters, not patterns
        with engine.connect() as conn:
            like = members(conn, parse_segment("h", {"field": "org.name", "contains": "%"}), ctx)
        assert like == []
    with engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(t.Person)).scalar_one()
    assert after == before
    assert {"person", "organization", "deal"} <= set(inspect(engine).get_table_names())
    assert ids["hanako"] in _all(engine)


def _all(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return members(
            conn, parse_segment("a", {"field": "person.email", "exists": True}), Context(AS_OF)
        )


def test_startswith_percent_is_literal(engine: Engine) -> None:
    ids = seed_people(engine)
    ctx = Context(as_of=AS_OF)
    with engine.connect() as conn:
        hit = members(
            conn, parse_segment("p", {"field": "person.attributes.plan", "startswith": "50%_"}), ctx
        )
        miss = members(
            conn, parse_segment("p", {"field": "person.attributes.plan", "startswith": "5_%"}), ctx
        )
    assert hit == [ids["mika"]]
    assert miss == []
