"""The segment compiler on seeded data, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.support.push.push_seed import AS_OF, ago, seed_people
from warehouse.activation.segment_schema import current_members, snapshot
from warehouse.activation.segments import Context, explain, members, parse_segment, parse_segments


def run(engine: Engine, cond: dict[str, Any], segments: dict[str, Any] | None = None) -> set[int]:
    parsed = parse_segments({**(segments or {}), "s": cond})
    ctx = Context(as_of=AS_OF, segments=parsed)
    with engine.connect() as conn:
        return set(members(conn, parsed["s"], ctx))


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    return seed_people(engine)


def names(ids: dict[str, int], found: set[int]) -> set[str]:
    return {k for k, v in ids.items() if v in found and k not in ("alice", "bob", "acme", "kansai")}


def test_the_example_from_the_issue(engine: Engine, ids: dict[str, int]) -> None:
    cond = {
        "all": [
            {"field": "person.gender", "eq": "female"},
            {"field": "person.age", "between": [30, 39]},
            {"activity": "last_inbound_mail", "within_days": 30},
            {"deal": "open_in_stage", "stage": "提案"},
            {"rfm": {"recency": [4, 5]}},
        ]
    }
    assert names(ids, run(engine, cond)) == {"hanako"}


CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"field": "person.gender", "eq": "female"}, {"hanako", "mika", "keiko"}),  # ghost deleted
    ({"field": "person.age", "between": [30, 39]}, {"hanako", "keiko"}),  # mika is 29 today
    ({"field": "person.age", "eq": 39}, {"keiko"}),  # 39 since today
    ({"field": "person.age", "gte": 40}, {"taro"}),
    ({"field": "person.age", "lte": 29}, {"mika"}),
    ({"field": "org.industry", "in": ["製造業", "金融"]}, {"hanako", "mika"}),
    ({"field": "org.region", "eq": "大阪府"}, {"taro"}),
    ({"field": "org.region", "not_in": ["大阪府"]}, {"hanako", "mika", "keiko"}),
    ({"field": "person.owner", "eq": "ALICE@own.example"}, {"hanako", "mika"}),
    ({"field": "org.owner", "eq": "bob@own.example"}, {"taro"}),
    ({"field": "person.team", "eq": "大阪営業"}, {"taro"}),
    ({"field": "person.team", "exists": False}, {"keiko"}),
    ({"field": "person.owner", "ne": "alice@own.example"}, {"taro", "keiko"}),
    ({"field": "person.lifecycle_stage", "eq": "lead"}, {"taro", "keiko"}),
    ({"field": "person.attributes.plan", "eq": "gold"}, {"hanako"}),
    ({"field": "person.attributes.score", "gte": 50}, {"hanako"}),
    ({"field": "person.attributes.newsletter", "eq": True}, {"hanako"}),
    ({"field": "org.attributes.tier", "in": ["A"]}, {"hanako", "mika"}),
    ({"field": "person.attributes.plan", "startswith": "50%"}, {"mika"}),
    ({"field": "person.attributes.plan", "exists": False}, {"keiko"}),
    ({"activity": "last_contact", "within_days": 7}, {"taro"}),
    ({"activity": "last_contact", "not_within_days": 30}, {"mika", "keiko"}),
    ({"activity": "last_inbound_mail", "within_days": 30}, {"hanako"}),
    ({"activity": "last_inbound_mail", "within_days": 60}, {"hanako", "taro"}),
    ({"activity": "meetings", "within_days": 30, "min_count": 2}, {"taro"}),
    ({"activity": "last_meeting", "within_days": 7}, {"taro"}),  # mika's was cancelled
    ({"deal": "open"}, {"hanako", "mika"}),
    ({"deal": "won_amount", "months": 12, "gte": 1_000_000}, {"taro"}),
    ({"deal": "won_amount", "months": 24, "gte": 400_000, "lte": 600_000}, {"keiko"}),
    ({"rfm": {"recency": [4, 5], "monetary": [4, 5]}}, {"hanako"}),
    ({"rfm": {"frequency": [1, 1]}}, {"taro"}),
    ({"not": {"field": "person.gender", "eq": "female"}}, {"taro"}),
    ({"not": {"field": "person.gender", "exists": True}}, set()),
    (
        {"any": [{"field": "person.age", "lte": 29}, {"deal": "won_amount", "gte": 1}]},
        {"mika", "taro"},
    ),
]


def test_each_condition(engine: Engine, ids: dict[str, int]) -> None:
    """One seeded warehouse, every kind of condition (one test so the setup is paid once)."""
    wrong = []
    for cond, expected in CASES:
        got = names(ids, run(engine, cond))
        if got != expected:
            wrong.append(f"{cond}: got {sorted(got)}, expected {sorted(expected)}")
    assert not wrong, "\n".join(wrong)


def test_not_of_missing_data_counts_as_not(engine: Engine, ids: dict[str, int]) -> None:
    # keiko has no organization: "not in industry IT" must include her, not drop her as NULL
    found = run(engine, {"not": {"field": "org.industry", "eq": "IT"}})
    assert names(ids, found) == {"hanako", "mika", "keiko"}


def test_segments_can_refer_to_segments(engine: Engine, ids: dict[str, int]) -> None:
    segs = {"women": {"field": "person.gender", "eq": "female"}}
    found = run(engine, {"all": [{"segment": "women"}, {"deal": "open"}]}, segs)
    assert names(ids, found) == {"hanako", "mika"}


def test_preview_explains_why_each_member_matches(engine: Engine, ids: dict[str, int]) -> None:
    cond = parse_segment(
        "s",
        {"any": [{"field": "person.gender", "eq": "male"}, {"deal": "open"}]},
    )
    ctx = Context(as_of=AS_OF)
    with engine.connect() as conn:
        why = explain(conn, cond, ctx, [ids["taro"], ids["hanako"]])
    assert why[ids["taro"]] == [("person.gender eq male", True), ("deal=open", False)]
    assert why[ids["hanako"]] == [("person.gender eq male", False), ("deal=open", True)]


def test_membership_snapshot_records_entries_and_exits(engine: Engine, ids: dict[str, int]) -> None:
    with engine.begin() as conn:
        first = snapshot(conn, "vip", [ids["hanako"], ids["taro"]], ago(2))
        second = snapshot(conn, "vip", [ids["hanako"], ids["mika"]], ago(1))
        third = snapshot(conn, "vip", [ids["hanako"], ids["taro"], ids["mika"]], AS_OF)
        now = current_members(conn, "vip")
    assert (first.entered, first.exited) == (2, 0)
    assert (second.entered, second.exited) == (1, 1)
    assert (third.entered, third.exited) == (1, 0)  # taro came back: a new membership row
    assert now == {ids["hanako"], ids["taro"], ids["mika"]}
