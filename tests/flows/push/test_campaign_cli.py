"""``kizuna segments|campaigns|reminders`` end to end on a workspace file, and the Prefect flows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from flows.cli.main import app
from tests.conftest import PG_URL
from tests.support.push.push_seed import consent, seed_people

runner = CliRunner()

PUSH: dict[str, Any] = {
    "segments": {
        "customers": {"field": "person.email", "exists": True},
        "acme_people": {
            "all": [{"segment": "customers"}, {"field": "org.name", "eq": "株式会社アクメ"}]
        },
    },
    "campaigns": {
        "news": {
            "segment": "customers",
            "channel": "outbox",
            "steps": [{"ja": {"subject": "{{ person.name }} 様 ニュース", "text": "本文"}}],
        }
    },
    "reminders": {"channel": "outbox", "rules": {"idle": {"type": "deal_idle", "days": 14}}},
    "outbound": {
        "sender": "営業部 <sales@own.example>",
        "unsubscribe_address": "unsubscribe@own.example",
        "quiet_hours": None,
    },
}


def _url(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return str(engine.url)
    with engine.connect() as conn:
        schema = conn.execute(text("show search_path")).scalar_one()
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def _workspace(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch, **over: Any
) -> Path:
    data = {
        "version": 1,
        "company": {"name": "株式会社サンプル", "domains": ["own.example"]},
        **PUSH,
        **over,
    }
    f = tmp_path / "kizuna.yaml"
    f.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("KIZUNA_WAREHOUSE_URL", _url(engine))
    return f


def test_segments_and_dry_run_from_the_cli(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed_people(engine)
    consent(engine, ids["hanako"], "opted_in")
    ws = _workspace(tmp_path, engine, monkeypatch)

    out = runner.invoke(app, ["segments", "list", "-w", str(ws)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "customers" in out.output and "acme_people" in out.output

    out = runner.invoke(
        app, ["segments", "preview", "acme_people", "-w", str(ws)], env={"COLUMNS": "200"}
    )
    assert out.exit_code == 0, out.output
    assert "acme_people: 2 members" in out.output and "山田 花子" in out.output
    assert "✓ org.name eq 株式会社アクメ" in out.output

    out = runner.invoke(
        app, ["campaigns", "run", "news", "--dry-run", "-w", str(ws)], env={"COLUMNS": "200"}
    )
    assert out.exit_code == 0, out.output
    assert "1 to send, 3 skipped" in out.output
    assert "山田 花子 様 ニュース" in out.output
    assert "no opt-in for marketing_mail" in out.output

    out = runner.invoke(app, ["campaigns", "list", "-w", str(ws)], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "planned" in out.output, out.output


def test_cli_errors_name_the_file_and_field(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_people(engine)
    ws = _workspace(tmp_path, engine, monkeypatch)
    out = runner.invoke(app, ["campaigns", "run", "nosuch", "--dry-run", "-w", str(ws)])
    assert out.exit_code == 2 and "no campaign named 'nosuch'" in out.output
    out = runner.invoke(app, ["segments", "preview", "nosuch", "-w", str(ws)])
    assert out.exit_code == 2 and "no segment named 'nosuch'" in out.output
    bad = _workspace(
        tmp_path,
        engine,
        monkeypatch,
        campaigns={"news": {"segment": "typo", "steps": [{"en": {"subject": "s", "text": "t"}}]}},
    )
    out = runner.invoke(app, ["campaigns", "list", "-w", str(bad)], env={"COLUMNS": "300"})
    assert out.exit_code == 2
    assert "kizuna.yaml: campaigns.news.segment: unknown segment 'typo'" in out.output.replace(
        "\n", ""
    )
    bad = _workspace(
        tmp_path, engine, monkeypatch, segments={"x": {"field": "person.salary", "gte": 1}}
    )
    out = runner.invoke(app, ["segments", "list", "-w", str(bad)], env={"COLUMNS": "300"})
    assert out.exit_code == 2 and "segments.x.field: unknown field 'person.salary'" in out.output


def test_real_run_and_reminders_through_prefect(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    ids = seed_people(engine)
    consent(engine, ids["hanako"], "opted_in")
    consent(engine, ids["mika"], "opted_in")
    ws = _workspace(tmp_path, engine, monkeypatch)
    out = runner.invoke(app, ["campaigns", "run", "news", "-w", str(ws)])
    assert out.exit_code == 1 and "no approved plan" in out.output  # the approval gate
    assert (
        runner.invoke(app, ["campaigns", "run", "news", "--dry-run", "-w", str(ws)]).exit_code == 0
    )
    consent(engine, ids["mika"], "opted_out")  # changes her mind after the dry run
    out = runner.invoke(app, ["campaigns", "run", "news", "-w", str(ws)])
    assert out.exit_code == 0, out.output
    assert "'sent': 1" in out.output and "'skipped': 1" in out.output
    assert re.search(r"campaign news .* 2/2", out.output), out.output  # its progress bar
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1

    out = runner.invoke(app, ["reminders", "run", "-w", str(ws)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    # the one open deal, idle for 200 days, in its owner's digest
    assert "Notified owners: 1 reminders in 1 digest(s)" in out.output
    assert len(list((tmp_path / "outbox").glob("kz.digest.*.eml"))) == 1


def test_scheduled_campaigns_run_when_due(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    from datetime import UTC, datetime

    from flows.push.campaigns import is_due, scheduled_campaigns

    assert is_due("0 10 * * 1", None, datetime.now(UTC), "Asia/Tokyo")
    monday_9 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # Monday 09:00 JST
    assert not is_due(
        "0 10 * * 1", monday_9, datetime(2026, 11, 30, 0, 59, tzinfo=UTC), "Asia/Tokyo"
    )
    assert is_due("0 10 * * 1", monday_9, datetime(2026, 11, 30, 1, 0, tzinfo=UTC), "Asia/Tokyo")

    ids = seed_people(engine)
    consent(engine, ids["hanako"], "opted_in")
    campaigns = {
        "weekly": {**PUSH["campaigns"]["news"], "approval": "auto", "schedule": "0 10 * * 1"},
        "gated": {**PUSH["campaigns"]["news"], "schedule": "0 10 * * 1"},  # never approved
        "manual": PUSH["campaigns"]["news"],
    }
    ws = _workspace(tmp_path, engine, monkeypatch, campaigns=campaigns)
    first = scheduled_campaigns(str(ws))
    assert set(first["campaigns"]) == {"weekly"}
    assert first["campaigns"]["weekly"]["outcomes"] == {"sent": 1}
    again = scheduled_campaigns(str(ws))  # the cron has not fired since: nothing runs
    assert again["campaigns"] == {}
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_held_recipients_are_listed_and_settled_and_a_held_campaign_says_who_has_it(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warehouse import lease
    from warehouse.activation import ledger
    from warehouse.state import now

    ids = seed_people(engine)
    consent(engine, ids["hanako"], "opted_in")
    ws = _workspace(tmp_path, engine, monkeypatch)
    out = runner.invoke(app, ["campaigns", "status", "-w", str(ws)])
    assert out.exit_code == 0 and "No recipients are held" in out.output, out.output
    with engine.begin() as conn:
        key = ledger.Key("news", ids["hanako"], 1)
        want = ledger.Want(key, "<m1@own.example>", "hanako@acme.example")
        ledger.claim(conn, [want], channel="smtp", plan_id=None, at=now())
        ledger.mark(conn, key, status="held", at=now(), detail="link broke after DATA")
    out = runner.invoke(app, ["campaigns", "status", "-w", str(ws)], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "link broke after DATA" in out.output, out.output
    assert "JST" in out.output
    args = ["campaigns", "decide", "news", str(ids["hanako"]), "--mark-sent", "-w", str(ws)]
    out = runner.invoke(app, args)
    assert out.exit_code == 0 and "recorded as sent" in out.output, out.output
    out = runner.invoke(app, args)  # nothing held any more: one clear line
    assert out.exit_code == 1 and "is not held" in out.output

    with lease.held(engine, "campaign:news", run_id="serve-run-7", what="x"):
        out = runner.invoke(
            app, ["campaigns", "run", "news", "--dry-run", "-w", str(ws)], env={"COLUMNS": "300"}
        )
    assert out.exit_code == 1
    line = out.output.strip()
    assert line.startswith("error: campaign news is being run by run serve-run-7 on ")
    assert "JST; try again later" in line and "Traceback" not in line
