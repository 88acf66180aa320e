"""Campaign mail over a real SMTP server (aiosmtpd): plan, approval gate, encodings, headers."""

from __future__ import annotations

import smtplib
from email import message_from_bytes, policy
from email.header import decode_header
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from connectors.mail.smtp_send import SmtpChannel
from flows.push.campaign_render import message_id
from flows.push.campaign_run import approved_plan, open_batches, plan
from flows.push.campaign_send import send_batch
from kizuna.errors import FatalError
from kizuna.tokens import parse_unsubscribe_address
from tests.support.push.push_seed import consent, make_cfg, seed_people
from tests.support.push.push_smtp import smtp_server
from warehouse.activation.consent import SuppressionEvent, suppress
from warehouse.activation.ledger_schema import Delivery
from warehouse.state import now

STEP_JA = {
    "subject": "{{ person.family_name }}様へ 秋のセミナー～ご案内",
    "text": "{{ person.name }} 様\n\n{{ org.name }} の皆様、いつもありがとうございます。\n担当: {{ owner.name }}",
    "html": "<p>{{ person.name }} 様</p><p>{{ org.name }}</p>",
}
STEP_EN = {"subject": "Autumn seminar for {{ person.name }}", "text": "Dear {{ person.name }},"}


def _cfg(tmp_path: Path, charset: str = "iso-2022-jp", **extra: Any) -> Any:
    return make_cfg(
        tmp_path,
        segments={"customers": {"field": "person.email", "exists": True}},
        campaigns={
            "seminar": {
                "segment": "customers",
                "channel": "mail",
                "steps": [{"ja": STEP_JA, "en": STEP_EN}],
                "japanese_charset": charset,
                **extra,
            }
        },
        outbound={"channels": {"mail": {"type": "smtp", "host": "127.0.0.1"}}},
    )


def _run(engine: Engine, cfg: Any, port: int, name: str = "seminar") -> dict[str, int]:
    channel = SmtpChannel(lambda: smtplib.SMTP("127.0.0.1", port, timeout=10), name="mail")
    plan_id = approved_plan(engine, cfg, name)
    total: dict[str, int] = {}
    try:
        for batch in open_batches(engine, plan_id, 2):
            for k, v in send_batch(engine, cfg, name, plan_id, batch, channel).items():
                total[k] = total.get(k, 0) + v
    finally:
        channel.close()
    return total


def _header(msg: EmailMessage, name: str) -> str:
    return str(msg[name])


def test_campaign_over_smtp_japanese_headers_round_trip(engine: Engine, tmp_path: Path) -> None:
    ids = seed_people(engine)
    for who in ("hanako", "mika", "taro"):
        consent(engine, ids[who], "opted_in")
    with engine.begin() as conn:  # taro opted in but his address hard-bounced
        suppress(
            conn,
            SuppressionEvent(email="taro@kansai.example", reason="bounce", source="dsn", at=now()),
        )
    cfg = _cfg(tmp_path)
    view = plan(engine, cfg, "seminar")
    by = {x.person_id: x for x in view.lines}
    assert by[ids["hanako"]].action == "send"
    assert by[ids["keiko"]].action == "skip" and "no opt-in" in str(by[ids["keiko"]].reason)
    assert by[ids["taro"]].action == "skip" and "suppressed: bounce" in str(by[ids["taro"]].reason)
    assert ids["ghost"] not in by  # deleted people are not members at all

    with smtp_server() as (box, port):
        counts = _run(engine, cfg, port)
        msgs = box.messages()
    assert counts == {"sent": 2}
    assert sorted(str(m["To"].addresses[0].addr_spec) for m in msgs) == [
        "hanako@acme.example",
        "mika@acme.example",
    ]
    hanako = next(m for m in msgs if "hanako" in str(m["To"]))
    raw = box.raw[[str(m["To"]) for m in msgs].index(str(hanako["To"]))]
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?iso-2022-jp?" in head.lower()  # encoded words, not raw 8-bit
    assert head.isascii()
    assert str(hanako["Subject"]) == "山田様へ 秋のセミナー〜ご案内"  # ～ mapped to its JIS twin
    assert hanako["From"].addresses[0].display_name == "株式会社サンプル 営業部"
    assert hanako["To"].addresses[0].display_name == "山田 花子"
    text = hanako.get_body(("plain",))
    assert text is not None and text.get_content_charset() == "iso-2022-jp"
    body = text.get_content()
    assert "山田 花子 様" in body and "株式会社アクメ" in body and "担当: 佐藤 愛" in body
    assert "特定" not in body and "unsubscribe+" in body  # the footer says how to stop
    assert "東京都千代田区千代田1-1" in body
    html = hanako.get_body(("html",))
    assert html is not None and "<p>山田 花子 様</p>" in html.get_content()

    secret = cfg.unsubscribe_secret()
    mid = message_id(secret, "seminar", ids["hanako"], 1, "own.example")
    assert str(hanako["Message-ID"]) == mid
    lu = str(hanako["List-Unsubscribe"])
    mailto = lu.split("mailto:", 1)[1].split("?", 1)[0]
    assert parse_unsubscribe_address(mailto, "unsubscribe@own.example", secret) == (
        ids["hanako"],
        "marketing_mail",
    )
    assert hanako["List-Unsubscribe-Post"] is None  # one-click needs an HTTPS target

    with engine.connect() as conn:
        rows = conn.execute(select(Delivery.status, Delivery.message_id)).all()
    assert sorted(s for s, _ in rows) == ["sent", "sent"]
    # The plan is done: running again without a new dry run sends nothing and says why.
    with pytest.raises(FatalError, match="dry-run"):
        approved_plan(engine, cfg, "seminar")
    again = plan(engine, cfg, "seminar")
    assert [x for x in again.lines if x.action == "send"] == []


def test_utf8_english_recipient_and_one_click_header(engine: Engine, tmp_path: Path) -> None:
    ids = seed_people(engine)
    consent(engine, ids["mika"], "opted_in")
    from sqlalchemy import update

    from warehouse import schema as t

    with engine.begin() as conn:
        conn.execute(
            update(t.Person).where(t.Person.id == ids["mika"]).values(attributes={"language": "en"})
        )
    cfg = make_cfg(
        tmp_path,
        segments={"customers": {"field": "person.email", "exists": True}},
        campaigns={
            "seminar": {
                "segment": "customers",
                "channel": "mail",
                "steps": [{"ja": STEP_JA, "en": STEP_EN}],
            }
        },
        outbound={
            "channels": {"mail": {"type": "smtp", "host": "127.0.0.1"}},
            "unsubscribe_url": "https://own.example/unsubscribe",
        },
    )
    plan(engine, cfg, "seminar")
    with smtp_server() as (box, port):
        assert _run(engine, cfg, port) == {"sent": 1}
        (msg,) = box.messages()
    assert str(msg["Subject"]) == "Autumn seminar for Mika O'Brien"
    assert msg.get_body(("plain",)).get_content_charset() == "utf-8"  # type: ignore[union-attr]
    assert "https://own.example/unsubscribe?t=" in str(msg["List-Unsubscribe"])
    assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


def test_utf8_default_encodes_japanese_headers_as_encoded_words(
    engine: Engine, tmp_path: Path
) -> None:
    ids = seed_people(engine)
    consent(engine, ids["hanako"], "opted_in")
    cfg = _cfg(tmp_path, charset="utf-8")
    plan(engine, cfg, "seminar")
    with smtp_server() as (box, port):
        _run(engine, cfg, port)
        raw = box.raw[0]
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head.lower()
    parsed = message_from_bytes(raw, policy=policy.compat32)
    subject = "".join(
        p.decode(c or "ascii") if isinstance(p, bytes) else p
        for p, c in decode_header(parsed["Subject"])
    )
    assert subject == "山田様へ 秋のセミナー～ご案内"  # UTF-8 keeps the fullwidth tilde as typed


def test_refused_recipient_is_failed_not_retried(engine: Engine, tmp_path: Path) -> None:
    ids = seed_people(engine)
    consent(engine, ids["hanako"], "opted_in")
    consent(engine, ids["mika"], "opted_in")
    cfg = _cfg(tmp_path)
    plan(engine, cfg, "seminar")
    with smtp_server() as (box, port):
        box.refuse.add("mika@acme.example")
        assert _run(engine, cfg, port) == {"sent": 1, "failed": 1}
    with engine.connect() as conn:
        status = dict(conn.execute(select(Delivery.person_id, Delivery.status)).all())
    assert status == {ids["hanako"]: "sent", ids["mika"]: "failed"}


def test_real_run_needs_a_dry_run_and_an_unchanged_campaign(engine: Engine, tmp_path: Path) -> None:
    seed_people(engine)
    cfg = _cfg(tmp_path)
    with pytest.raises(FatalError, match="no approved plan"):
        approved_plan(engine, cfg, "seminar")
    plan(engine, cfg, "seminar")
    changed = _cfg(tmp_path, charset="utf-8")
    with pytest.raises(FatalError, match="changed since the dry run"):
        approved_plan(engine, changed, "seminar")
