"""Reminder rules fire once per condition, respect Japanese holidays, and resolve themselves."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from connectors.mail.outbox import OutboxChannel
from flows.push.reminder_run import run_all
from tests.support.push.push_seed import AS_OF, Seeder, ago, make_cfg, seed_people
from warehouse import schema as t
from warehouse.activation.ledger_schema import Reminder
from warehouse.activation.reminders import add_business_days, is_business_day

JST_NOON = AS_OF  # Friday 2026-11-27, 12:00 in Tokyo
RULES = {
    "channel": "outbox",
    "rules": {
        "idle": {"type": "deal_idle", "days": 14},
        "closing": {"type": "close_date", "within_days": 7},
        "followup": {"type": "meeting_no_followup", "business_days": 2},
        "key": {"type": "key_account_quiet", "days": 7, "attribute": "tier", "values": ["A"]},
    },
}


def at_jst(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h - 9, tzinfo=UTC)


def test_business_days_skip_weekends_and_national_holidays() -> None:
    assert not is_business_day(date(2026, 11, 23))  # 勤労感謝の日 (Monday)
    assert add_business_days(date(2026, 11, 20), 2) == date(2026, 11, 25)  # Fri → Wed
    assert add_business_days(date(2026, 12, 30), 1) == date(2026, 12, 31)
    assert add_business_days(date(2026, 12, 31), 1) == date(2027, 1, 4)  # 元日, weekend


def _seed(engine: Engine) -> dict[str, int]:
    ids = seed_people(engine)
    with engine.begin() as conn:
        s = Seeder(conn)
        a = ids["alice"]
        ids["quiet_deal"] = s.deal("静かな案件", owner_id=a, created_at=ago(60), updated_at=ago(60))
        ids["busy_deal"] = s.deal("活発な案件", owner_id=a, created_at=ago(60), updated_at=ago(60))
        s.activity("call", ago(3), deal_id=ids["busy_deal"], people=[(ids["taro"], "to")])
        today = date(2026, 11, 27)
        ids["late"] = s.deal("遅延案件", owner_id=a, expected_close=today - timedelta(days=2))
        ids["soon"] = s.deal("間近案件", owner_id=a, expected_close=today + timedelta(days=3))
        s.deal("先の案件", owner_id=a, expected_close=today + timedelta(days=30))
        s.deal("受注済み", owner_id=a, status="won", expected_close=today - timedelta(days=9))
        # Friday 11/20 meeting: due Wed 11/25 (Mon 11/23 is a holiday) → overdue today.
        ids["m_overdue"] = s.activity(
            "meeting",
            at_jst(2026, 11, 20),
            ends_at=at_jst(2026, 11, 20, 11),
            people=[(ids["keiko"], "attendee")],
            staff=[(ids["bob"], "organizer")],
        )
        # Wednesday 11/25 meeting: due Friday 11/27 (today) → not yet.
        s.activity(
            "meeting",
            at_jst(2026, 11, 25),
            people=[(ids["keiko"], "attendee")],
            staff=[(ids["bob"], "organizer")],
        )
        # Thursday 11/19 meeting followed up by mail the next day → fine.
        s.activity("meeting", at_jst(2026, 11, 19), people=[(ids["mika"], "attendee")])
        s.activity(
            "email", at_jst(2026, 11, 20), direction="outbound", people=[(ids["mika"], "to")]
        )
    return ids


def _open(engine: Engine) -> set[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Reminder.rule, Reminder.subject_id).where(Reminder.status == "open")
        ).all()
    return {(r, int(s)) for r, s in rows}


def test_rules_fire_once_and_resolve_when_cleared(engine: Engine, tmp_path: Path) -> None:
    ids = _seed(engine)
    cfg = make_cfg(tmp_path, segments={}, reminders=RULES)
    outbox = OutboxChannel(tmp_path / "outbox", name="outbox")

    first = run_all(engine, cfg, outbox, as_of=JST_NOON)
    expected = {
        ("idle", ids["quiet_deal"]),
        ("idle", ids["late"]),  # seeded 200 days ago without activity: idle too
        ("idle", ids["soon"]),
        ("closing", ids["late"]),
        ("closing", ids["soon"]),
        ("followup", ids["m_overdue"]),
        ("key", ids["acme"]),  # last contact with アクメ: 10 days ago
    }
    assert _open(engine) >= expected
    assert ("idle", ids["busy_deal"]) not in _open(engine)
    assert first.sent == len(_open(engine))
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == first.digests  # one digest per rep
    msgs = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert len({m["To"].addresses[0].addr_spec for m in msgs}) == len(msgs)
    followup = [m for m in msgs if "商談後のフォローアップ" in _text(m)]
    # m_overdue (organizer bob) and taro's meeting 3 days ago (no mail since; owner bob)
    assert [m["To"].addresses[0].addr_spec for m in followup] == ["bob@own.example"]
    assert "■ 商談後のフォローアップ (2)" in _text(followup[0])
    assert all(" / close date" not in str(m["Subject"]) for m in msgs)  # Japanese only

    # Run again: nothing new is sent.
    second = run_all(engine, cfg, outbox, as_of=JST_NOON + timedelta(hours=1))
    assert second.sent == 0 and sum(second.opened.values()) == 0
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == first.digests

    # Conditions clear: activity on the quiet deal, a follow-up mail to taro, the late deal's
    # close date moved, a call with アクメ.
    with engine.begin() as conn:
        s = Seeder(conn)
        later = JST_NOON + timedelta(hours=2)
        s.activity(
            "email",
            later,
            direction="outbound",
            deal_id=ids["quiet_deal"],
            people=[(ids["keiko"], "to")],
        )
        s.activity("call", later, people=[(ids["hanako"], "to")])
        conn.execute(
            update(t.Deal).where(t.Deal.id == ids["late"]).values(expected_close=date(2027, 3, 31))
        )
    third = run_all(engine, cfg, outbox, as_of=JST_NOON + timedelta(hours=3))
    still = _open(engine)
    for cleared in [
        ("idle", ids["quiet_deal"]),
        ("followup", ids["m_overdue"]),
        ("closing", ids["late"]),
        ("key", ids["acme"]),
    ]:
        assert cleared not in still, cleared
    assert ("closing", ids["soon"]) in still
    assert third.resolved["followup"] == 1 and third.resolved["key"] == 1
    assert third.sent == 0


def test_a_reminder_in_doubt_is_not_sent_twice(engine: Engine, tmp_path: Path) -> None:
    _seed(engine)
    cfg = make_cfg(tmp_path, segments={}, reminders=RULES)
    outbox = OutboxChannel(tmp_path / "outbox", name="outbox")
    first = run_all(engine, cfg, outbox, as_of=JST_NOON)
    # Pretend the process died after writing the files but before recording "sent".
    with engine.begin() as conn:
        conn.execute(update(Reminder).values(delivery="sending", sent_at=None))
    again = run_all(engine, cfg, outbox, as_of=JST_NOON)
    assert again.sent == 0 and again.recovered == first.sent
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == first.digests


def _text(m: Any) -> str:
    part = m.get_body(preferencelist=("plain",))
    return str(part.get_content()) if part is not None else ""
