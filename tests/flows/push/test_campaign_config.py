"""The push sections of the workspace file: every mistake names the file, the field and a fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kizuna.errors import ConfigError
from tests.support.push.push_seed import make_cfg

SEG = {"all_people": {"field": "person.email", "exists": True}}
STEP = [{"ja": {"subject": "s", "text": "t"}}]


@pytest.mark.parametrize(
    ("campaigns", "reminders", "outbound", "field", "words"),
    [
        (
            {"news": {"segment": "all_people", "channel": "fax", "steps": STEP}},
            {},
            {},
            "campaigns.news.channel",
            "no channel named 'fax'",
        ),
        (
            {"news": {"segment": "all_people", "steps": STEP, "schedule": "every monday"}},
            {},
            {},
            "campaigns.news.schedule",
            "not a cron expression",
        ),
        (
            {"ニュース": {"segment": "all_people", "steps": STEP}},
            {},
            {},
            "campaigns",
            "ASCII",
        ),
        (
            {"news": {"segment": "all_people", "steps": [{}]}},
            {},
            {},
            "campaigns.news.steps.0",
            "ja",
        ),
        (
            {"news": {"segment": "all_people", "steps": STEP, "purpose": "spam"}},
            {},
            {},
            "campaigns.news.purpose",
            "marketing_mail",
        ),
        ({}, {"rules": {"x": {"type": "deal_idle"}}}, {}, "reminders.rules.x", "needs `days:`"),
        ({}, {"rules": {"x": {"type": "birthday", "days": 1}}}, {}, "reminders.rules.x.type", ""),
        ({}, {}, {"channels": {"m": {"type": "smtp"}}}, "outbound.channels.m", "needs `host:`"),
    ],
)
def test_push_config_errors(
    tmp_path: Path,
    campaigns: dict[str, Any],
    reminders: dict[str, Any],
    outbound: dict[str, Any],
    field: str,
    words: str,
) -> None:
    with pytest.raises(ConfigError) as info:
        make_cfg(
            tmp_path, segments=SEG, campaigns=campaigns, reminders=reminders, outbound=outbound
        )
    err = info.value
    assert err.file.endswith("kizuna.yaml")
    assert err.field == field, str(err)
    assert words in str(err)


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_cfg(
        tmp_path,
        segments=SEG,
        outbound={
            "channels": {"m": {"type": "smtp", "host": "h", "password_env": "KZ_TEST_SMTP_PW"}}
        },
    )
    monkeypatch.delenv("KZ_TEST_SMTP_PW", raising=False)
    with pytest.raises(ConfigError, match=r"KZ_TEST_SMTP_PW.* is not set"):
        cfg.outbound.channels["m"].smtp()
    monkeypatch.setenv("KZ_TEST_SMTP_PW", "hunter2-secret")
    settings = cfg.outbound.channels["m"].smtp()
    assert "hunter2-secret" not in repr(settings)
    monkeypatch.setenv("KIZUNA_UNSUBSCRIBE_SECRET", "from-env")  # guessable: refused
    with pytest.raises(ConfigError, match="KIZUNA_UNSUBSCRIBE_SECRET is 8 bytes"):
        cfg.unsubscribe_secret()
    monkeypatch.setenv("KIZUNA_UNSUBSCRIBE_SECRET", "from-env-" + "x" * 32)
    assert cfg.unsubscribe_secret() == b"from-env-" + b"x" * 32
    monkeypatch.delenv("KIZUNA_UNSUBSCRIBE_SECRET")
    key = cfg.unsubscribe_secret()  # generated once, kept beside the warehouse, private
    assert key == cfg.unsubscribe_secret() and len(key) == 64
    assert (tmp_path / ".kizuna" / "unsubscribe.key").stat().st_mode & 0o077 == 0
