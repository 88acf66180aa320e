"""Reminders through a Slack incoming webhook: the post, its errors, config and a full run."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy import Engine, update

from connectors.channel import Outgoing
from connectors.mail.compose import Content, Envelope, compose
from connectors.mail.slack_send import SlackChannel
from flows.push.channels import build_channel
from flows.push.reminder_run import run_all
from kizuna.errors import ConfigError, FatalError, TransientError
from tests.support.push.push_seed import AS_OF, Seeder, ago, make_cfg, seed_people
from warehouse.activation.ledger_schema import Reminder

HOOK = "https://hooks.slack.com/services/T000/B000/SECRETxyz"


def _item(
    subject: str = "[Kizuna] 案件が動いていません", body: str = "- 案件: <静か> & 小"
) -> Outgoing:
    msg = compose(
        Content(subject=subject, text=body + "\n"),
        Envelope(
            sender="Kizuna <noreply@own.example>",
            to_name="佐藤 花子",
            to_address="sato@own.example",
            message_id="<kz.rem.deal.1.abc@own.example>",
            date=AS_OF,
        ),
    )
    return Outgoing(
        message_id="<kz.rem.deal.1.abc@own.example>",
        to_address="sato@own.example",
        data=msg.as_bytes(),
    )


@respx.mock
def test_post_carries_owner_subject_and_escaped_body() -> None:
    route = respx.post(HOOK).mock(return_value=httpx.Response(200, text="ok"))
    ch = SlackChannel(httpx.Client(), SecretStr(HOOK), name="team")
    ch.send(_item())
    sent = json.loads(route.calls.last.request.content)
    assert sent == {
        "text": "sato@own.example: *[Kizuna] 案件が動いていません*\n- 案件: &lt;静か&gt; &amp; 小"
    }
    assert ch.was_sent("<kz.rem.deal.1.abc@own.example>") is None


@respx.mock
def test_throttled_is_transient_with_retry_after() -> None:
    respx.post(HOOK).mock(return_value=httpx.Response(429, headers={"Retry-After": "30"}))
    with pytest.raises(TransientError) as exc:
        SlackChannel(httpx.Client(), SecretStr(HOOK), name="team").send(_item())
    assert exc.value.retry_after == 30.0


@respx.mock
@pytest.mark.parametrize(("status", "text"), [(404, "no_service"), (403, "action_prohibited")])
def test_refusal_is_fatal_and_names_channel_not_url(status: int, text: str) -> None:
    respx.post(HOOK).mock(return_value=httpx.Response(status, text=text))
    with pytest.raises(FatalError) as exc:
        SlackChannel(httpx.Client(), SecretStr(HOOK), name="team").send(_item())
    message = str(exc.value)
    assert "team" in message and text in message
    assert "SECRET" not in message and "hooks.slack.com" not in message


@respx.mock
def test_unreachable_is_transient_without_url() -> None:
    respx.post(HOOK).mock(side_effect=httpx.ConnectError("boom " + HOOK))
    with pytest.raises(TransientError) as exc:
        SlackChannel(httpx.Client(), SecretStr(HOOK), name="team").send(_item())
    assert "SECRET" not in str(exc.value)


def test_config_needs_webhook_env_and_env_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as exc:
        make_cfg(tmp_path, segments={}, outbound={"channels": {"team": {"type": "slack"}}})
    assert "webhook_env" in str(exc.value)
    cfg = make_cfg(
        tmp_path,
        segments={},
        outbound={"channels": {"team": {"type": "slack", "webhook_env": "KZ_TEST_HOOK"}}},
    )
    monkeypatch.delenv("KZ_TEST_HOOK", raising=False)
    with pytest.raises(ConfigError) as exc:
        build_channel(cfg, "team")
    assert "KZ_TEST_HOOK" in str(exc.value)
    monkeypatch.setenv("KZ_TEST_HOOK", HOOK)
    assert isinstance(build_channel(cfg, "team", http=httpx.Client()), SlackChannel)


def test_campaign_on_slack_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        make_cfg(
            tmp_path,
            segments={"all": {"field": "person.email", "exists": True}},
            campaigns={
                "c": {
                    "segment": "all",
                    "channel": "team",
                    "steps": [{"ja": {"subject": "s", "text": "t"}}],
                }
            },
            outbound={"channels": {"team": {"type": "slack", "webhook_env": "KZ_TEST_HOOK"}}},
        )
    assert exc.value.field == "campaigns.c.channel"


def test_reminder_run_posts_once_and_resends_in_doubt(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed_people(engine)
    with engine.begin() as conn:
        Seeder(conn).deal(
            "静かな案件", owner_id=ids["alice"], created_at=ago(60), updated_at=ago(60)
        )
    cfg = make_cfg(
        tmp_path,
        segments={},
        reminders={"channel": "team", "rules": {"idle": {"type": "deal_idle", "days": 14}}},
        outbound={"channels": {"team": {"type": "slack", "webhook_env": "KZ_TEST_HOOK"}}},
    )
    monkeypatch.setenv("KZ_TEST_HOOK", HOOK)
    with respx.mock:
        route = respx.post(HOOK).mock(return_value=httpx.Response(200, text="ok"))
        channel = build_channel(cfg, "team", http=httpx.Client())
        first = run_all(engine, cfg, channel, as_of=AS_OF)
        assert first.sent >= 1 and route.call_count == first.digests == 1
        assert "静かな案件" in json.loads(route.calls.last.request.content)["text"]
        # A crash after the send: the row is left "sending"; Slack cannot tell, so it is resent.
        with engine.begin() as conn:
            conn.execute(update(Reminder).values(delivery="sending"))
        again = run_all(engine, cfg, channel, as_of=AS_OF)
        assert again.recovered == 0 and again.sent == first.sent
        assert route.call_count == 2 * first.digests


def test_built_channel_closes_only_its_own_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_cfg(
        tmp_path,
        segments={},
        outbound={"channels": {"team": {"type": "slack", "webhook_env": "KZ_TEST_HOOK"}}},
    )
    monkeypatch.setenv("KZ_TEST_HOOK", HOOK)
    given = httpx.Client()
    build_channel(cfg, "team", http=given).close()
    assert not given.is_closed
    own = build_channel(cfg, "team")
    assert isinstance(own, SlackChannel)
    own.close()
    assert own.client.is_closed
