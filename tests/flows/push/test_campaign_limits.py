"""Quiet hours in the recipient's zone, frequency caps, throttling, follow-up steps, charsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update

from connectors.mail.compose import Content, Envelope, compose, for_iso2022jp
from connectors.mail.outbox import OutboxChannel
from flows.push.campaign_run import approved_plan, open_batches, plan
from flows.push.campaign_send import Pacer, send_batch
from tests.support.push.push_seed import consent, make_cfg, seed_people
from warehouse import schema as t

STEP = {"ja": {"subject": "{{ person.name }} 様", "text": "本文"}}


def _cfg(root: Path, campaigns: dict[str, Any], **outbound: Any) -> Any:
    return make_cfg(
        root,
        segments={"customers": {"field": "person.email", "exists": True}},
        campaigns=campaigns,
        outbound={"channels": {"main": {"type": "outbox", "path": "out"}}, **outbound},
    )


def _send(
    engine: Engine, cfg: Any, name: str, at: datetime, pacer: Pacer | None = None
) -> dict[str, int]:
    channel = OutboxChannel(cfg.root / "out", name="main")
    plan_id = approved_plan(engine, cfg, name)
    out: dict[str, int] = {}
    for batch in open_batches(engine, plan_id, 100):
        got = send_batch(engine, cfg, name, plan_id, batch, channel, clock=lambda: at, pacer=pacer)
        for k, v in got.items():
            out[k] = out.get(k, 0) + v
    return out


def test_quiet_hours_follow_the_recipients_zone(engine: Engine, tmp_path: Path) -> None:
    ids = seed_people(engine)
    for who in ("hanako", "mika"):
        consent(engine, ids[who], "opted_in")
    with engine.begin() as conn:  # mika reads mail in New York
        conn.execute(
            update(t.Person)
            .where(t.Person.id == ids["mika"])
            .values(attributes={"time_zone": "America/New_York"})
        )
    cfg = _cfg(
        tmp_path,
        {"news": {"segment": "customers", "channel": "main", "steps": [STEP]}},
        quiet_hours={"start": "21:00", "end": "08:00"},
    )
    plan(engine, cfg, "news")
    night_tokyo = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 23:00 JST = 09:00 in New York
    assert _send(engine, cfg, "news", night_tokyo) == {"sent": 1, "deferred": 1}
    morning_tokyo = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # 09:30 JST
    assert _send(engine, cfg, "news", morning_tokyo) == {"sent": 1}
    assert len(list((tmp_path / "out").glob("*.eml"))) == 2


def test_frequency_cap_counts_every_campaign(engine: Engine, tmp_path: Path) -> None:
    ids = seed_people(engine)
    consent(engine, ids["hanako"], "opted_in")
    campaigns = {
        "a": {"segment": "customers", "channel": "main", "steps": [STEP]},
        "b": {"segment": "customers", "channel": "main", "steps": [STEP]},
    }
    cfg = _cfg(tmp_path, campaigns, frequency_cap={"max": 1, "days": 7})
    now = datetime.now(UTC)
    plan(engine, cfg, "a")
    plan(engine, cfg, "b")  # both approved before anything was sent
    assert _send(engine, cfg, "a", now) == {"sent": 1}
    assert _send(engine, cfg, "b", now) == {"skipped": 1}  # the cap is checked at send time
    view = plan(engine, cfg, "b")
    (line,) = [x for x in view.lines if x.person_id == ids["hanako"]]
    assert line.action == "skip" and "frequency cap: 1 in 7 days" in str(line.reason)


def test_throttle_spaces_sends_to_the_channel_rate() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    pacer = Pacer(120, clock=lambda: clock[0], sleep=sleep)  # 2 a second
    for _ in range(4):
        pacer.wait()
        clock[0] += 0.1  # the send itself
    assert [round(s, 2) for s in slept] == [0.4, 0.4, 0.4]
    free = Pacer(None, clock=lambda: 0.0, sleep=sleep)
    free.wait()
    free.wait()
    assert len(slept) == 3


def test_follow_up_step_goes_out_after_its_delay(engine: Engine, tmp_path: Path) -> None:
    ids = seed_people(engine)
    consent(engine, ids["hanako"], "opted_in")
    second = {"after_days": 7, "ja": {"subject": "再送 {{ person.name }} 様", "text": "二通目"}}
    cfg = _cfg(
        tmp_path, {"drip": {"segment": "customers", "channel": "main", "steps": [STEP, second]}}
    )
    t0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    first = plan(engine, cfg, "drip", as_of=t0)
    assert [(x.step, x.action) for x in first.lines if x.person_id == ids["hanako"]] == [
        (1, "send")
    ]
    assert _send(engine, cfg, "drip", t0) == {"sent": 1}
    too_soon = plan(engine, cfg, "drip", as_of=t0 + timedelta(days=3))
    assert [x for x in too_soon.lines if x.person_id == ids["hanako"]] == []
    later = plan(engine, cfg, "drip", as_of=t0 + timedelta(days=8))
    assert [(x.step, x.action) for x in later.lines if x.person_id == ids["hanako"]] == [
        (2, "send")
    ]
    assert _send(engine, cfg, "drip", t0 + timedelta(days=8)) == {"sent": 1}
    subjects = sorted(
        str(message_from_bytes(f.read_bytes(), policy=policy.default)["Subject"])
        for f in (tmp_path / "out").glob("*.eml")
    )
    assert subjects == ["再送 山田 花子 様", "山田 花子 様"]


def test_iso2022jp_falls_back_to_utf8_when_it_cannot_carry_the_text() -> None:
    env = Envelope(
        "営業部 <s@own.example>", "高橋 様", "t@x.example", "<m@own.example>", datetime.now(UTC)
    )
    ok = compose(Content("ｶﾀｶﾅ～のご案内", "本文—です"), env, charset="iso-2022-jp")
    assert ok.charset == "iso-2022-jp" and ok.note is None
    parsed = message_from_bytes(ok.as_bytes(), policy=policy.default)
    assert str(parsed["Subject"]) == "カタカナ〜のご案内"  # half-width kana widened
    emoji = compose(Content("セール🎉", "本文"), env, charset="iso-2022-jp")
    assert emoji.charset == "utf-8" and emoji.note is not None
    assert str(message_from_bytes(emoji.as_bytes(), policy=policy.default)["Subject"]) == "セール🎉"
    assert for_iso2022jp("①") is None  # NEC special characters are not in ISO-2022-JP
    assert for_iso2022jp("髙橋") is None  # nor is 髙 (IBM extension)


def test_audience_new_sends_only_to_people_who_joined_later(engine: Engine, tmp_path: Path) -> None:
    ids = seed_people(engine)
    for who in ("hanako", "mika", "taro"):
        consent(engine, ids[who], "opted_in")
    cfg = make_cfg(
        tmp_path,
        segments={"leads": {"field": "person.lifecycle_stage", "eq": "lead"}},
        campaigns={
            "welcome": {"segment": "leads", "channel": "main", "audience": "new", "steps": [STEP]}
        },
        outbound={"channels": {"main": {"type": "outbox", "path": "out"}}},
    )
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    assert plan(engine, cfg, "welcome", as_of=t0).lines == []  # the baseline: taro, keiko
    with engine.begin() as conn:  # hanako becomes a lead later
        conn.execute(
            update(t.Person).where(t.Person.id == ids["hanako"]).values(lifecycle_stage="lead")
        )
    view = plan(engine, cfg, "welcome", as_of=t0 + timedelta(days=1))
    assert [(x.person_id, x.action) for x in view.lines] == [(ids["hanako"], "send")]
    assert view.entered == 1
