"""The pipeline on SQLite and PostgreSQL: stage sums in JPY, weighted pipeline, conversion and
time-in-stage from the stage history, owners and teams, closing months and stale deals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Engine, update

from flows.reports.render import yen
from tests.support.reports_seed import Seed, utc
from warehouse import schema as t
from warehouse.reporting.pipeline import Pipeline, pipeline
from warehouse.reporting.staff import team_members

AS_OF = utc(2026, 11, 20, 3)  # 12:00 on 20 Nov in Tokyo


@dataclass
class Ids:
    rep: int
    mate: int
    d1: int
    d2: int
    d3: int
    d6: int


def _seed(engine: Engine) -> Ids:
    with engine.begin() as conn:
        s = Seed(conn)
        team = s.team("東日本営業部")
        rep = s.staff("rep@own.example", "山田 太郎", team)
        mate = s.staff("mate@own.example", "鈴木 花子")
        org1 = s.org("株式会社テスト")
        sato = s.person("sato@test.example", "佐藤 一郎", org1)
        # D1: in リード since 10 Nov, closes this month; its company mailed on the 15th.
        d1 = s.deal(
            "D1",
            "リード",
            "1000000",
            history=[("リード", utc(2026, 11, 10, 3))],
            created_at=utc(2026, 11, 1),
            probability=10,
            owner_id=rep,
            org_id=org1,
            close=date(2026, 11, 25),
        )
        s.activity(
            "email",
            utc(2026, 11, 15, 3),
            [("sato@test.example", "from", sato, None), ("rep@own.example", "to", None, rep)],
            direction="inbound",
        )
        # D2: 10 days in リード, in 提案 since 11 Oct, closes next month, nothing since.
        d2 = s.deal(
            "D2",
            "提案",
            "2500000",
            history=[("リード", utc(2026, 10, 1, 3)), ("提案", utc(2026, 10, 11, 3))],
            created_at=utc(2026, 9, 1),
            probability=30,
            owner_id=rep,
            close=date(2026, 12, 10),
        )
        # D3: imported from a spreadsheet (history stamped at created_at), past its close date.
        d3 = s.deal(
            "D3",
            "提案",
            "1234567.50",
            history=[("提案", utc(2026, 11, 18, 9))],
            probability=30,
            owner_id=rep,
            close=date(2026, 11, 1),
        )
        # D4: won on 5 Nov after 10 days in リード and 25 in 提案.
        s.deal(
            "D4",
            "受注",
            "5000000",
            history=[
                ("リード", utc(2026, 10, 1, 3)),
                ("提案", utc(2026, 10, 11, 3)),
                ("受注", utc(2026, 11, 5, 3)),
            ],
            created_at=utc(2026, 9, 1),
            status="won",
            probability=100,
            owner_id=mate,
        )
        # D5: lost after 20 days in リード (in October, not this month).
        s.deal(
            "D5",
            "失注",
            "700000",
            history=[("リード", utc(2026, 10, 1, 3)), ("失注", utc(2026, 10, 21, 3))],
            created_at=utc(2026, 9, 1),
            status="lost",
            probability=0,
            owner_id=mate,
        )
        # D6: a USD deal with a mail linked to it yesterday.
        d6 = s.deal(
            "D6",
            "交渉",
            "10000",
            history=[("交渉", utc(2026, 11, 2))],
            created_at=utc(2026, 9, 1),
            probability=70,
            owner_id=mate,
            currency="USD",
        )
        s.activity(
            "email",
            utc(2026, 11, 19),
            [("mate@own.example", "from", None, mate)],
            direction="outbound",
            deal_id=d6,
        )
        # D7: lost, imported without change times: its close date says when.
        s.deal(
            "D7",
            "失注",
            "100",
            history=[("失注", utc(2026, 11, 18, 9))],
            status="lost",
            probability=0,
            owner_id=mate,
            close=date(2026, 11, 3),
        )
    return Ids(rep, mate, d1, d2, d3, d6)


def _pipeline(engine: Engine) -> Pipeline:
    with engine.connect() as conn:
        return pipeline(conn, AS_OF, "Asia/Tokyo", stale_days=14)


def test_stages_amounts_and_weighted_pipeline(engine: Engine) -> None:
    _seed(engine)
    p = _pipeline(engine)
    assert p.today == date(2026, 11, 20)
    assert [s.stage for s in p.stages] == ["リード", "提案", "交渉"]
    st = {s.stage: s for s in p.stages}
    assert (st["リード"].count, st["リード"].amount, st["リード"].weighted) == (
        1,
        Decimal("1000000"),
        Decimal("100000"),
    )
    assert st["提案"].count == 2
    assert st["提案"].amount == Decimal("3734567.50")
    assert st["提案"].weighted == Decimal("750000") + Decimal("370370")  # 370,370.25 → whole yen
    # The USD deal is counted, never summed into yen.
    assert (st["交渉"].count, st["交渉"].amount) == (1, Decimal(0))
    assert p.other_currency == 1
    assert p.open_count == 4
    assert yen(p.open_amount) == "¥4,734,568"
    assert yen(p.weighted) == "¥1,220,370"
    assert p.average_deal == Decimal("1183642")  # 4,734,567.50 / 4 = 1,183,641.875


def test_conversion_and_time_in_stage_from_history(engine: Engine) -> None:
    _seed(engine)
    st = {s.stage: s for s in _pipeline(engine).stages}
    lead = st["リード"]
    # Left リード: D2 (moved on), D4 (moved on, won), D5 (lost). D1 is still there: undecided.
    assert (lead.exited, lead.advanced) == (3, 2)
    assert lead.conversion == pytest.approx(2 / 3)
    assert lead.avg_days == pytest.approx((10 + 10 + 20) / 3)
    assert lead.avg_age == pytest.approx(10.0)  # D1, since 10 Nov 03:00 UTC
    prop = st["提案"]
    assert (prop.exited, prop.advanced, prop.conversion) == (1, 1, 1.0)
    assert prop.avg_days == pytest.approx(25.0)
    # D3's only row is its import stamp: not an entry time, so only D2's 40 days count.
    assert prop.avg_age == pytest.approx(40.0)


def test_owners_teams_months_and_stale(engine: Engine) -> None:
    ids = _seed(engine)
    p = _pipeline(engine)
    owners = {o.owner_id: o for o in p.owners}
    rep = owners[ids.rep]
    assert (rep.name, rep.team, rep.count) == ("山田 太郎", "東日本営業部", 3)
    assert rep.amount == Decimal("4734567.50")
    assert rep.closing == Decimal("1000000")
    mate = owners[ids.mate]
    assert (mate.count, mate.won_count, mate.won) == (1, 1, Decimal("5000000"))
    assert [(t.team, t.count) for t in p.teams] == [("東日本営業部", 3)]

    assert [d.id for d in p.closing_this_month] == [ids.d1]
    assert [d.id for d in p.closing_next_month] == [ids.d2]
    assert (p.closing_count, p.closing_amount, p.closing_weighted) == (
        1,
        Decimal("1000000"),
        Decimal("100000"),
    )
    assert (p.next_count, p.next_amount) == (1, Decimal("2500000"))
    assert [d.id for d in p.overdue] == [ids.d3]
    assert (p.won_count, p.won_amount, p.lost_count) == (1, Decimal("5000000"), 1)

    # D1: its company mailed 5 days ago. D6: a mail linked to it yesterday. D2: last moved
    # 40 days ago. D3: nothing but its import, so no touch at all.
    stale = {d.id: d.idle_days for d in p.stale}
    assert stale == {ids.d2: 40, ids.d3: None}
    assert [d.id for d in p.stale] == [ids.d2, ids.d3]  # biggest amount first
    assert p.stale_count == 2 and rep.stale == 2


def test_bounces_and_auto_replies_are_no_touch(engine: Engine) -> None:
    """Issue 16: a vacation notice or a bounce linked to a deal (or from its customer) does
    not make the deal fresh; a real mail does."""
    ids = _seed(engine)
    with engine.begin() as conn:
        s = Seed(conn)
        s._n = 1000
        off = [
            s.activity(kind, utc(2026, 11, 19, 3), [], direction="inbound", deal_id=ids.d2)
            for kind in ("auto_reply", "bounce")
        ]
        conn.execute(update(t.Activity).where(t.Activity.id.in_(off)).values(timeline=False))
    assert {d.id: d.idle_days for d in _pipeline(engine).stale} == {ids.d2: 40, ids.d3: None}
    with engine.begin() as conn:
        s = Seed(conn)
        s._n = 2000
        s.activity("email", utc(2026, 11, 19, 3), [], deal_id=ids.d2, subject="re")
    assert {d.id for d in _pipeline(engine).stale} == {ids.d3}


def test_owner_filter_and_configured_stage_order(engine: Engine) -> None:
    ids = _seed(engine)
    with engine.connect() as conn:
        members = team_members(conn, "東日本営業部")
        assert members == [ids.rep]
        assert team_members(conn, "西日本営業部") is None
        p = pipeline(conn, AS_OF, stages=["提案", "リード"], owner_ids=members)
    assert [s.stage for s in p.stages] == ["提案", "リード"]
    assert p.open_count == 3 and p.other_currency == 0
    assert [o.owner_id for o in p.owners] == [ids.rep]


def test_empty_warehouse(engine: Engine) -> None:
    p = _pipeline(engine)
    assert (p.open_count, p.stages, p.owners, p.average_deal) == (0, [], [], Decimal(0))


def test_pipeline_leaves_the_connection_as_it_found_it(engine: Engine) -> None:
    """Regression: streaming the history with ``conn.execution_options(yield_per=...)`` turned
    every later query on the connection into a server-side cursor; on a PostgreSQL table
    without statistics the planner then chose nested loops that ran for minutes."""
    _seed(engine)
    with engine.connect() as conn:
        pipeline(conn, AS_OF)
        assert "yield_per" not in conn.get_execution_options()
