"""The demo's push half: the sample configuration is valid and a second run sends nothing new."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine

from flows.demo.push import demo_campaign_config, run_demo_push, summary_lines
from flows.runtime import dispose_engines
from tests.flows.push.test_campaign_cli import _url
from tests.support.push.push_seed import Seeder, ago, seed_people


def test_demo_push_runs_into_the_outbox_once(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed_people(engine)
    with engine.begin() as conn:  # a recent meeting with the アクメ people (open 提案 deal)
        Seeder(conn).activity(
            "meeting", ago(5), people=[(ids["hanako"], "attendee"), (ids["mika"], "attendee")]
        )
    data = {
        "version": 1,
        "company": {"name": "株式会社サンプル", "domains": ["own.example"]},
        **demo_campaign_config(domain="own.example", company="株式会社サンプル"),
    }
    ws = tmp_path / "kizuna.yaml"
    ws.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("KIZUNA_WAREHOUSE_URL", _url(engine))
    try:
        first = run_demo_push(ws)
        second = run_demo_push(ws)
    finally:
        dispose_engines()
    follow = first["campaigns"]["proposal_followup"]
    assert follow["planned"] == 2 and follow["sent"] == 2  # sales follow-up: no opt-in needed
    seminar = first["campaigns"]["autumn_seminar"]
    assert seminar["planned"] >= 1 and seminar["skipped_in_plan"] >= 1  # half "signed up"
    assert first["reminders"]["sent"] >= 1
    assert first["files"] == follow["sent"] + seminar["sent"] + first["reminders"]["digests"]
    assert second["files"] == first["files"]  # nothing twice
    assert any("outbox:" in line for line in summary_lines(first))
