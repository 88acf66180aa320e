"""The Microsoft Graph sendMail channel on Graph's documented shapes (respx)."""

from __future__ import annotations

import base64
import random
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, update

from connectors.channel import Outgoing
from connectors.mail.graph import GraphAuth, GraphOptions, TokenSource
from connectors.mail.graph_send import GraphSendChannel
from connectors.throttle import RetryPolicy, TokenBucket
from flows.push.campaign_render import message_id
from flows.push.campaign_run import approved_plan, open_batches, plan
from flows.push.campaign_send import send_batch
from flows.push.channels import build_channel
from flows.push.reminder_run import run_all
from kizuna.errors import AuthError, BadRecord, ConfigError, TransientError
from tests.support.fakes.google_fakes import rfc822
from tests.support.fakes.graph_fakes import (
    BASE,
    CLIENT,
    MAILBOX,
    MBX,
    SECRET,
    TENANT,
    TOKEN_URL,
    GraphScript,
    graph_error,
    graph_mock,
    message,
    page,
    token_ok,
)
from tests.support.push.push_bulk import bulk_cfg, seed_recipients
from tests.support.push.push_seed import AS_OF, Seeder, ago, make_cfg, seed_people
from warehouse.activation import ledger
from warehouse.activation.ledger_schema import Delivery, Reminder

MID = "<kz.c.autumn.1.0.abcd@ourco.co.jp>"
SEND_URL = f"{BASE}/users/{MBX}/sendMail"
SENT_ITEMS = f"{BASE}/users/{MBX}/mailFolders/sentitems/messages"


def _channel(client: httpx.Client, sleeps: list[float] | None = None) -> GraphSendChannel:
    auth = GraphAuth(tenant_id=TENANT, client_id=CLIENT, client_secret=SecretStr(SECRET))
    s = sleeps if sleeps is not None else []
    opts = GraphOptions(
        mailbox=MAILBOX,
        policy=RetryPolicy(max_retries=2, sleep=s.append, rand=lambda: 0.25),
        budget=TokenBucket(100.0, 1000.0, clock=lambda: 0.0, sleep=s.append),
    )
    return GraphSendChannel(client, TokenSource(auth), opts, name="m365")


def _text(raw: bytes) -> str:
    part = message_from_bytes(raw, policy=policy.default).get_body(preferencelist=("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def _item() -> Outgoing:
    data = rfc822(MID, sender=f"営業部 <{MAILBOX}>", to="Taro <taro@customer.co.jp>")
    return Outgoing(message_id=MID, to_address="taro@customer.co.jp", data=data)


def test_send_posts_base64_mime_as_text_plain() -> None:
    script = GraphScript([httpx.Response(202)])
    with graph_mock(script):
        _channel(httpx.Client()).send(_item())
    req = script.requests[0]
    assert req.method == "POST" and str(req.url) == SEND_URL
    assert req.headers["content-type"] == "text/plain"
    assert base64.b64decode(req.content) == _item().data


def test_was_sent_filters_sent_items_by_internet_message_id() -> None:
    found = page([message("AAMkSent-1", MID, sender=(MAILBOX, "佐藤 花子"))])
    script = GraphScript([found, page([])])
    with graph_mock(script):
        ch = _channel(httpx.Client())
        assert ch.was_sent(MID) is True
        assert ch.was_sent("<it's@ourco.co.jp>") is False
    first, second = script.requests
    assert first.url.copy_with(query=None) == SENT_ITEMS
    assert first.url.params["$filter"] == f"internetMessageId eq '{MID}'"
    assert second.url.params["$filter"] == "internetMessageId eq '<it''s@ourco.co.jp>'"


def test_expired_token_is_renewed_and_the_send_made_once() -> None:
    expired = graph_error(401, "InvalidAuthenticationToken", "Access token has expired.")
    script = GraphScript([expired, httpx.Response(202)])
    with graph_mock(script, token=[token_ok("first"), token_ok("second")]):
        _channel(httpx.Client()).send(_item())
    assert [r.headers["authorization"] for r in script.requests] == [
        "Bearer first",
        "Bearer second",
    ]


def test_throttled_or_failed_send_is_not_retried_in_place() -> None:
    throttled = graph_error(
        429,
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
        headers={"Retry-After": "12"},
    )
    script = GraphScript([throttled, httpx.Response(202)])
    with graph_mock(script), pytest.raises(TransientError) as exc:
        _channel(httpx.Client()).send(_item())
    assert exc.value.retry_after == 12.0
    assert len(script.requests) == 1


def test_lookup_retries_throttling() -> None:
    sleeps: list[float] = []
    busy = graph_error(503, "ServiceUnavailable", "Service Unavailable", {"Retry-After": "2"})
    script = GraphScript([busy, page([message("AAMkSent-1", MID)])])
    with graph_mock(script):
        assert _channel(httpx.Client(), sleeps).was_sent(MID) is True
    assert 2.0 in sleeps


def test_bad_recipient_fails_only_that_message() -> None:
    bad = graph_error(400, "ErrorInvalidRecipients", "At least one recipient is not valid.")
    with graph_mock(GraphScript([bad])), pytest.raises(BadRecord) as exc:
        _channel(httpx.Client()).send(_item())
    assert "taro@customer.co.jp" in str(exc.value) and "ErrorInvalidRecipients" in str(exc.value)


def test_missing_mail_send_permission_says_so() -> None:
    denied = graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials.")
    with graph_mock(GraphScript([denied])), pytest.raises(AuthError) as exc:
        _channel(httpx.Client()).send(_item())
    assert "Mail.Send" in str(exc.value) and MAILBOX in str(exc.value)
    assert SECRET not in str(exc.value)


def test_config_names_missing_fields(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        make_cfg(
            tmp_path,
            segments={},
            outbound={"channels": {"m": {"type": "m365", "account": MAILBOX}}},
        )
    assert "tenant_id" in str(exc.value) and "client_secret_env" in str(exc.value)


def test_reminders_via_graph_recover_a_crashed_send_without_resending(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed_people(engine)
    with engine.begin() as conn:
        Seeder(conn).deal(
            "静かな案件", owner_id=ids["alice"], created_at=ago(60), updated_at=ago(60)
        )
    m = {
        "type": "m365",
        "account": MAILBOX,
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "client_secret_env": "KZ_TEST_M365_SECRET",
    }
    cfg = make_cfg(
        tmp_path,
        segments={},
        reminders={"channel": "m", "rules": {"idle": {"type": "deal_idle", "days": 14}}},
        outbound={"channels": {"m": m}},
    )
    monkeypatch.delenv("KZ_TEST_M365_SECRET", raising=False)
    with pytest.raises(ConfigError) as exc:
        build_channel(cfg, "m")
    assert "KZ_TEST_M365_SECRET" in str(exc.value)
    monkeypatch.setenv("KZ_TEST_M365_SECRET", SECRET + "-reminders")

    script = GraphScript([httpx.Response(202) for _ in range(20)])
    with graph_mock(script):
        first = run_all(engine, cfg, build_channel(cfg, "m", http=httpx.Client()), as_of=AS_OF)
    assert first.sent >= 1 and len(script.requests) == first.digests == 1  # one per rep
    assert all(str(r.url) == SEND_URL for r in script.requests)
    assert any("静かな案件" in _text(base64.b64decode(r.content)) for r in script.requests)

    with engine.begin() as conn:
        conn.execute(update(Reminder).values(delivery="sending"))
    found = GraphScript([page([message("AAMkSent", MID)]) for _ in range(first.digests)])
    with graph_mock(found):
        again = run_all(engine, cfg, build_channel(cfg, "m", http=httpx.Client()), as_of=AS_OF)
    assert again.recovered == first.sent and again.sent == 0
    assert all(r.method == "GET" for r in found.requests)
    assert found.requests[0].url.params["$filter"].startswith("internetMessageId eq '<kz.digest.")


class _Mailbox:
    """A Graph mailbox that files what sendMail accepts in Sent Items, by Message-ID."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/sendMail"):
            mime = message_from_bytes(base64.b64decode(request.content), policy=policy.default)
            self.sent[str(mime["Message-ID"])] += 1
            return httpx.Response(202)
        if request.url.path.endswith("/mailFolders/sentitems/messages"):
            wanted = request.url.params["$filter"].split("'", 1)[1][:-1].replace("''", "'")
            hits = [message("AAMk" + wanted, wanted)] if self.sent[wanted] else []
            return page(hits)
        raise AssertionError(f"unexpected Graph request {request.method} {request.url}")


class _Crash(Exception):
    pass


class _Crashing:
    """Dies at random instants: before the send, or after Graph accepted it."""

    def __init__(self, inner: GraphSendChannel, rng: random.Random) -> None:
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


def test_campaign_through_graph_with_crashes_delivers_exactly_once(
    engine: Engine, tmp_path: Path
) -> None:
    groups = seed_recipients(engine, 120, seed=5)
    m = {
        "type": "m365",
        "account": MAILBOX,
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "client_secret_env": "KZ_TEST_M365_SECRET",
    }
    cfg = bulk_cfg(tmp_path, m, batch_size=25)
    plan(engine, cfg, "bulk")
    box, rng, crashes = _Mailbox(), random.Random(11), 0
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(return_value=token_ok())
        router.route(host="graph.microsoft.com").mock(side_effect=box)
        for _ in range(200):
            with engine.connect() as conn:
                if ledger.current_plan(conn, "bulk") is None:
                    break
            channel = _Crashing(_channel(httpx.Client()), rng)
            try:
                plan_id = approved_plan(engine, cfg, "bulk")
                for batch in open_batches(engine, plan_id, 25):
                    send_batch(engine, cfg, "bulk", plan_id, batch, channel)
            except _Crash:
                crashes += 1
        else:
            raise AssertionError("campaign never finished")
    secret = cfg.unsubscribe_secret()
    expected = {message_id(secret, "bulk", p, 1, "own.example") for p in groups["eligible"]}
    with engine.connect() as conn:
        recovered = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.detail.like("recovered%"))
        ).scalar_one()
    assert crashes >= 2 and recovered >= 1, (crashes, recovered)
    assert set(box.sent) == expected
    assert max(box.sent.values()) == 1
