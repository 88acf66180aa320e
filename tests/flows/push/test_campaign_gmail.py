"""The Gmail send channel against googleapiclient's own seam on the offline discovery doc."""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import Engine, func, select, update

from connectors.channel import Outgoing
from connectors.mail.gmail_send import GmailChannel
from connectors.throttle import RetryPolicy
from flows.push.campaign_render import message_id
from flows.push.campaign_run import approved_plan, open_batches, plan
from flows.push.campaign_send import send_batch
from flows.push.channels import build_channel
from flows.push.reminder_run import run_all
from kizuna.errors import AuthError, BadRecord, ConfigError, TransientError
from tests.support.fakes.google_fakes import RATE_429, Script, error, ok, rfc822, service
from tests.support.push.push_bulk import bulk_cfg, seed_recipients
from tests.support.push.push_seed import AS_OF, Seeder, ago, make_cfg, seed_people
from warehouse.activation import ledger
from warehouse.activation.ledger_schema import Delivery, Reminder

ACCOUNT = "sales@own.example"
MID = "<kz.c.autumn.1.0.abcd@own.example>"
SEND = "/gmail/v1/users/me/messages/send"
LIST = "/gmail/v1/users/me/messages"
SENT_REPLY = {"id": "18c2f0a1b2c3d4e5", "threadId": "18c2f0a1b2c3d4e5", "labelIds": ["SENT"]}


def _channel(script: Script, sleeps: list[float] | None = None) -> GmailChannel:
    pol = RetryPolicy(max_retries=2, sleep=(sleeps if sleeps is not None else []).append)
    return GmailChannel(service("gmail", "v1", script), ACCOUNT, name="gm", policy=pol)


def _item() -> Outgoing:
    data = rfc822(MID, sender=f"営業部 <{ACCOUNT}>", to="Taro <taro@customer.co.jp>")
    return Outgoing(message_id=MID, to_address="taro@customer.co.jp", data=data)


def test_send_posts_the_exact_message_as_base64url_raw() -> None:
    script = Script([ok(SENT_REPLY)])
    _channel(script).send(_item())
    assert script.requests[0][0] == "POST" and script.paths() == [SEND]
    raw = json.loads(script.bodies[0])["raw"]
    assert "+" not in raw and "/" not in raw
    assert base64.urlsafe_b64decode(raw) == _item().data


def test_was_sent_searches_the_mailbox_by_message_id() -> None:
    script = Script(
        [ok({"messages": [SENT_REPLY], "resultSizeEstimate": 1}), ok({"resultSizeEstimate": 0})]
    )
    ch = _channel(script)
    assert ch.was_sent(MID) is True
    assert ch.was_sent(MID) is False
    params = script.params(0)
    assert script.paths() == [LIST, LIST]
    assert params["q"] == "rfc822msgid:kz.c.autumn.1.0.abcd@own.example"
    assert params["maxResults"] == "1"


def test_lookup_retries_throttling_but_never_guesses() -> None:
    sleeps: list[float] = []
    script = Script([RATE_429, ok({"messages": [SENT_REPLY]})])
    assert _channel(script, sleeps).was_sent(MID) is True
    assert sleeps and sleeps[0] >= 3.0
    down = error(503, "backendError", "Backend Error")
    with pytest.raises(TransientError):
        _channel(Script([down, down, down]), []).was_sent(MID)


def test_send_is_tried_once_on_server_error() -> None:
    script = Script([error(500, "backendError", "Backend Error"), ok(SENT_REPLY)])
    with pytest.raises(TransientError):
        _channel(script).send(_item())
    assert script.remaining == 1  # not retried: a resend waits for was_sent


def test_bad_recipient_fails_only_that_message() -> None:
    script = Script([error(400, "invalidArgument", "Invalid To header")])
    with pytest.raises(BadRecord) as exc:
        _channel(script).send(_item())
    assert "taro@customer.co.jp" in str(exc.value) and "Invalid To header" in str(exc.value)


def test_missing_scope_is_an_auth_error_naming_the_account() -> None:
    script = Script([error(403, "insufficientPermissions", "Request had insufficient scopes.")])
    with pytest.raises(AuthError) as exc:
        _channel(script).send(_item())
    assert ACCOUNT in str(exc.value)


def test_config_needs_account_and_credentials(tmp_path: Path) -> None:
    for bad, word in [
        ({"type": "gmail"}, "account"),
        ({"type": "gmail", "account": ACCOUNT}, "oauth_token_env"),
    ]:
        with pytest.raises(ConfigError) as exc:
            make_cfg(tmp_path, segments={}, outbound={"channels": {"gm": bad}})
        assert word in str(exc.value)


def _token_json() -> str:
    return json.dumps(
        {
            "type": "authorized_user",
            "client_id": "cid.apps.googleusercontent.com",
            "client_secret": "client-SECRET-xyz",
            "refresh_token": "1//refresh-SECRET-abc",
        }
    )


def test_reminders_via_gmail_recover_a_crashed_send_without_resending(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed_people(engine)
    with engine.begin() as conn:
        Seeder(conn).deal(
            "静かな案件", owner_id=ids["alice"], created_at=ago(60), updated_at=ago(60)
        )
    gm = {"type": "gmail", "account": ACCOUNT, "oauth_token_env": "KZ_TEST_GMAIL_TOKEN"}
    cfg = make_cfg(
        tmp_path,
        segments={},
        reminders={"channel": "gm", "rules": {"idle": {"type": "deal_idle", "days": 14}}},
        outbound={"channels": {"gm": gm}},
    )
    monkeypatch.delenv("KZ_TEST_GMAIL_TOKEN", raising=False)
    with pytest.raises(ConfigError) as exc:
        build_channel(cfg, "gm")
    assert "KZ_TEST_GMAIL_TOKEN" in str(exc.value)
    monkeypatch.setenv("KZ_TEST_GMAIL_TOKEN", _token_json())
    token: tuple[dict[str, str], str] = ok(
        {"access_token": "ya29.test", "expires_in": 3599, "token_type": "Bearer"}
    )
    script = Script([token] + [ok(SENT_REPLY)] * 20)
    first = run_all(engine, cfg, build_channel(cfg, "gm", google_http=script), as_of=AS_OF)
    sends = [i for i, p in enumerate(script.paths()) if p == SEND]
    assert first.sent >= 1 and len(sends) == first.digests == 1  # one digest per rep
    texts = []
    for i in sends:
        raw = base64.urlsafe_b64decode(json.loads(script.bodies[i])["raw"])
        part = message_from_bytes(raw, policy=policy.default).get_body(preferencelist=("plain",))
        assert isinstance(part, EmailMessage)
        texts.append(part.get_content())
    assert any("静かな案件" in t for t in texts)
    assert script.headers[sends[0]]["authorization"] == "Bearer ya29.test"

    # A crash after Gmail accepted the sends: Gmail is asked and nothing goes out twice.
    with engine.begin() as conn:
        conn.execute(update(Reminder).values(delivery="sending"))
    found: list[tuple[dict[str, str], str]] = [ok({"messages": [SENT_REPLY]})] * first.digests
    again_script = Script([token, *found])
    again = run_all(engine, cfg, build_channel(cfg, "gm", google_http=again_script), as_of=AS_OF)
    assert again.recovered == first.sent and again.sent == 0
    assert SEND not in again_script.paths()
    q: Any = again_script.params(1)["q"]
    assert q.startswith("rfc822msgid:kz.digest.")


class _GmailBox:
    """A Gmail mailbox behind googleapiclient's transport seam: sends are searchable at once."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    def request(self, uri: str, method: str = "GET", body: Any = None, *a: Any, **kw: Any) -> Any:
        import httplib2  # type: ignore[import-untyped]

        url = urlparse(uri)
        if method == "POST" and url.path == SEND:
            raw = base64.urlsafe_b64decode(json.loads(body)["raw"])
            mid = str(message_from_bytes(raw, policy=policy.default)["Message-ID"])
            self.sent[mid] += 1
            reply = SENT_REPLY
        elif method == "GET" and url.path == LIST:
            q = parse_qs(url.query)["q"][0].removeprefix("rfc822msgid:")
            reply = {"messages": [SENT_REPLY]} if self.sent[f"<{q}>"] else {}
        else:
            raise AssertionError(f"unexpected Gmail request {method} {uri}")
        return httplib2.Response({"status": "200"}), json.dumps(reply).encode()


class _Crash(Exception):
    pass


class _Crashing:
    def __init__(self, inner: GmailChannel, rng: random.Random) -> None:
        self.inner, self.rng, self.name = inner, rng, inner.name

    def send(self, item: Outgoing) -> None:
        roll = self.rng.random()
        if roll < 0.05:
            raise _Crash("before send")
        self.inner.send(item)
        if roll < 0.1:
            raise _Crash("after send")

    def was_sent(self, message_id: str) -> bool | None:
        return self.inner.was_sent(message_id)

    def close(self) -> None:
        self.inner.close()


def test_campaign_through_gmail_with_crashes_delivers_exactly_once(
    engine: Engine, tmp_path: Path
) -> None:
    groups = seed_recipients(engine, 120, seed=6)
    gm = {"type": "gmail", "account": ACCOUNT, "oauth_token_env": "KZ_TEST_GMAIL_TOKEN"}
    cfg = bulk_cfg(tmp_path, gm, batch_size=25)
    plan(engine, cfg, "bulk")
    box, rng, crashes = _GmailBox(), random.Random(12), 0
    for _ in range(200):
        with engine.connect() as conn:
            if ledger.current_plan(conn, "bulk") is None:
                break
        channel = _Crashing(GmailChannel(service("gmail", "v1", box), ACCOUNT, name="main"), rng)
        try:
            plan_id = approved_plan(engine, cfg, "bulk")
            for batch in open_batches(engine, plan_id, 25):
                send_batch(engine, cfg, "bulk", plan_id, batch, channel)
        except _Crash:
            crashes += 1
    else:
        raise AssertionError("campaign never finished")
    with engine.connect() as conn:
        recovered = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.detail.like("recovered%"))
        ).scalar_one()
    secret = cfg.unsubscribe_secret()
    expected = {message_id(secret, "bulk", p, 1, "own.example") for p in groups["eligible"]}
    assert crashes >= 2 and recovered >= 1, (crashes, recovered)
    assert set(box.sent) == expected
    assert max(box.sent.values()) == 1
