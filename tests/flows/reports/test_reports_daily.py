"""The 日報 queries on SQLite and PostgreSQL: JST day boundaries, mail grouping, deal changes,
follow-ups and the next business day's meetings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from tests.support.reports_seed import Seed, utc
from warehouse.reporting.daily import daily
from warehouse.reporting.model import Staff, day_window
from warehouse.reporting.staff import (
    latest_activity_days,
    staff_by_email,
    staff_with_activity,
)

TZ = "Asia/Tokyo"
D = date(2026, 11, 5)  # a Thursday; the 6th is a Friday, a business day


@dataclass
class World:
    rep: int
    mate: int
    other: int
    deal_a: int
    deal_b: int


def _seed(engine: Engine) -> World:
    with engine.begin() as conn:
        s = Seed(conn)
        rep = s.staff("rep@own.example", "山田 太郎")
        mate = s.staff("mate@own.example", "鈴木 花子")
        other = s.staff("other@own.example", None)
        org1 = s.org("株式会社テスト")
        org2 = s.org("サンプル商事")
        sato = s.person("sato@test.example", "佐藤 一郎", org1)
        ito = s.person("ito@sample.example", "伊藤 二郎", org2)
        solo = s.person("solo@gmail.example", "個人 三郎", None)
        r = ("rep@own.example", "organizer", None, rep)
        r_from = ("rep@own.example", "from", None, rep)
        r_to = ("rep@own.example", "to", None, rep)
        # 23:30 JST on the 4th: the day before.
        s.activity(
            "meeting",
            utc(2026, 11, 4, 14, 30),
            [r, ("sato@test.example", "attendee", sato, None)],
            subject="前日の商談",
        )
        # 08:30 JST on the 5th (23:30 UTC on the 4th): that day.
        s.activity(
            "meeting",
            utc(2026, 11, 4, 23, 30),
            [
                r,
                ("sato@test.example", "attendee", sato, None),
                ("mate@own.example", "attendee", None, mate),
            ],
            subject="朝の商談",
        )
        # 23:59 JST on the 5th: still that day.
        s.activity(
            "meeting",
            utc(2026, 11, 5, 14, 59),
            [r, ("ito@sample.example", "attendee", ito, None)],
            subject="夜の打ち合わせ",
        )
        # Cancelled: not shown.
        s.activity(
            "meeting",
            utc(2026, 11, 5, 5, 0),
            [r, ("ito@sample.example", "attendee", ito, None)],
            subject="中止",
            status="cancelled",
        )
        # 00:00 JST on the 6th: the next day's schedule.
        s.activity(
            "meeting",
            utc(2026, 11, 5, 15, 0),
            [r, ("ito@sample.example", "attendee", ito, None)],
            subject="翌日の商談",
        )
        # A meeting on the 1st with Ito nobody followed up by mail.
        s.activity(
            "meeting",
            utc(2026, 11, 1, 2, 0),
            [r, ("ito@sample.example", "attendee", ito, None)],
            subject="先週の商談",
        )
        # Mail on the 5th: a thread with Sato (one sent, one received), one received from Ito,
        # one internal, and one to a person without a company.
        s.activity(
            "email",
            utc(2026, 11, 5, 1, 0),
            [r_from, ("sato@test.example", "to", sato, None)],
            subject="御礼",
            direction="outbound",
            thread="t1",
        )
        s.activity(
            "email",
            utc(2026, 11, 5, 2, 0),
            [("sato@test.example", "from", sato, None), r_to],
            subject="Re: 御礼",
            direction="inbound",
            thread="t1",
        )
        s.activity(
            "email",
            utc(2026, 11, 5, 3, 0),
            [("ito@sample.example", "from", ito, None), r_to],
            subject="見積依頼",
            direction="inbound",
            thread="t2",
        )
        s.activity(
            "email",
            utc(2026, 11, 5, 4, 0),
            [r_from, ("mate@own.example", "to", None, mate)],
            subject="社内",
            direction="internal",
            thread="t3",
        )
        s.activity(
            "email",
            utc(2026, 11, 5, 5, 0),
            [r_from, ("solo@gmail.example", "to", solo, None)],
            subject="ご案内",
            direction="outbound",
            thread="t4",
        )
        # 00:30 JST on the 6th: not the 5th's mail.
        s.activity(
            "email",
            utc(2026, 11, 5, 15, 30),
            [r_from, ("sato@test.example", "to", sato, None)],
            subject="翌日",
            direction="outbound",
            thread="t5",
        )
        deal_a = s.deal(
            "テスト 導入",
            "提案",
            "1200000",
            history=[("リード", utc(2026, 10, 1)), ("提案", utc(2026, 11, 5, 0, 0))],
            owner_id=rep,
            org_id=org1,
        )
        deal_b = s.deal(
            "サンプル 新規",
            "リード",
            "300000",
            history=[("リード", utc(2026, 11, 5, 6))],
            owner_id=rep,
            org_id=org2,
        )
        # Someone else's deal moving that day is not in the rep's report.
        s.deal(
            "他人の案件",
            "見積",
            "1",
            history=[("提案", utc(2026, 10, 1)), ("見積", utc(2026, 11, 5, 6))],
            owner_id=other,
        )
    return World(rep, mate, other, deal_a, deal_b)


def test_day_window_is_jst_midnight_to_midnight() -> None:
    w = day_window(D, TZ)
    assert (w.start, w.end) == (utc(2026, 11, 4, 15), utc(2026, 11, 5, 15))
    # A DST day elsewhere is 23 hours long, not 24.
    ny = day_window(date(2026, 3, 8), "America/New_York")
    assert (ny.end - ny.start).total_seconds() == 23 * 3600


def test_activities_across_jst_midnight_land_on_the_right_day(engine: Engine) -> None:
    w = _seed(engine)
    with engine.connect() as conn:
        staff = staff_by_email(conn, "REP@own.example")
        assert staff == Staff(w.rep, "rep@own.example", "山田 太郎")
        r = daily(conn, staff, D, TZ)

    assert [m.subject for m in r.meetings] == ["朝の商談", "夜の打ち合わせ"]
    morning = r.meetings[0]
    assert morning.start == datetime(2026, 11, 5, 8, 30, tzinfo=morning.start.tzinfo)
    assert morning.start.utcoffset() == timedelta(hours=9)
    assert [(c.label, c.company) for c in morning.customers] == [("佐藤 一郎", "株式会社テスト")]
    assert sorted(a.label for a in morning.staff) == ["山田 太郎", "鈴木 花子"]
    # The meeting shows the open deal of the customer's company.
    assert [d.id for d in morning.deals] == [w.deal_a]

    assert r.next_day == date(2026, 11, 6)
    assert [m.subject for m in r.next_meetings] == ["翌日の商談"]

    by_label = {c.label: c for c in r.mail}
    assert set(by_label) == {"株式会社テスト", "サンプル商事", "個人 三郎"}
    test_co = by_label["株式会社テスト"]
    assert [(th.thread, th.sent, th.received) for th in test_co.threads] == [("t1", 1, 1)]
    assert (by_label["サンプル商事"].sent, by_label["サンプル商事"].received) == (0, 1)
    assert (r.sent, r.received, r.internal_mail) == (2, 2, 1)


def test_deal_changes_and_new_deals(engine: Engine) -> None:
    w = _seed(engine)
    with engine.connect() as conn:
        staff = staff_by_email(conn, "rep@own.example")
        assert staff is not None
        r = daily(conn, staff, D, TZ)
    assert [(c.deal.id, c.from_stage, c.to_stage, c.new) for c in r.deal_changes] == [
        (w.deal_a, "リード", "提案", False),
        (w.deal_b, None, "リード", True),
    ]
    assert [c.deal.id for c in r.new_deals] == [w.deal_b]
    assert r.deal_changes[0].at.hour == 9  # 00:00 UTC is 09:00 in Tokyo


def test_follow_ups_are_meetings_without_a_mail_since(engine: Engine) -> None:
    _seed(engine)
    with engine.connect() as conn:
        staff = staff_by_email(conn, "rep@own.example")
        assert staff is not None
        r = daily(conn, staff, D, TZ)
    # Sato got a mail after the morning meeting; Ito got none after either meeting.
    assert [(f.meeting.subject, f.days_since) for f in r.follow_ups] == [
        ("先週の商談", 4),
        ("夜の打ち合わせ", 0),
    ]
    with engine.connect() as conn:
        short = daily(conn, staff, D, TZ, follow_up_days=2)
    assert [f.meeting.subject for f in short.follow_ups] == ["夜の打ち合わせ"]


def test_who_had_activity_and_their_latest_day(engine: Engine) -> None:
    w = _seed(engine)
    with engine.connect() as conn:
        who = staff_with_activity(conn, day_window(D, TZ))
        # The rep and the colleague met or mailed; "other" only moved a deal, which counts.
        assert [s.id for s in who] == [w.mate, w.other, w.rep]  # by email
        assert {s.id: s.label for s in who}[w.other] == "other@own.example"
        assert latest_activity_days(conn, TZ, D) == {w.rep: D, w.mate: D}
        assert latest_activity_days(conn, TZ, date(2026, 11, 30), [w.rep]) == {
            w.rep: date(2026, 11, 6)
        }
        # A day with nothing: nobody.
        assert staff_with_activity(conn, day_window(date(2026, 11, 3), TZ)) == []


def test_latest_day_boundary(engine: Engine) -> None:
    """14:59 UTC is 23:59 in Tokyo, the same day; 15:59 UTC is already the next morning."""
    with engine.begin() as conn:
        s = Seed(conn)
        early = s.staff("early@own.example", "E")
        late = s.staff("late@own.example", "L")
        for who, hour in (("early", 14), ("late", 15)):
            s.activity(
                "email",
                datetime(2026, 11, 5, hour, 59, tzinfo=UTC),
                [(f"{who}@own.example", "from", None, early if who == "early" else late)],
                direction="internal",
            )
    with engine.connect() as conn:
        assert latest_activity_days(conn, TZ, date(2026, 12, 1)) == {
            early: date(2026, 11, 5),
            late: date(2026, 11, 6),
        }
        assert latest_activity_days(conn, TZ, D) == {early: D}
