"""The unsubscribe loop end to end, and consent re-checked at send time on every channel."""

from __future__ import annotations

import smtplib
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from connectors.mail.outbox import OutboxChannel
from connectors.mail.smtp_send import SmtpChannel
from flows.push.campaign_run import approved_plan, open_batches, plan
from flows.push.campaign_send import send_batch
from flows.push.feedback import apply_feedback, scan_folders
from mappings.mail.bounce import suppressions
from tests.support.push.push_seed import consent, make_cfg, seed_people
from tests.support.push.push_smtp import smtp_server
from warehouse.activation.ledger_schema import Delivery, PlanEntry
from warehouse.state import now

CORPUS = Path("/root/.pyenv/versions/3.11.7/lib/python3.11/test/test_email/data")
STEP = {"ja": {"subject": "{{ person.name }} 様 ご案内", "text": "本文です。"}}


def _cfg(root: Path, channel: dict[str, Any], feedback: list[str] | None = None) -> Any:
    return make_cfg(
        root,
        segments={"customers": {"field": "person.email", "exists": True}},
        campaigns={"news": {"segment": "customers", "channel": "main", "steps": [STEP]}},
        outbound={"channels": {"main": channel}, "feedback": feedback or []},
    )


def dsn(
    recipient: str,
    status: str = "5.1.1",
    action: str = "failed",
    mid: str = "<kz.news.1.1.x@own.example>",
) -> bytes:
    """A DSN shaped like Postfix's (RFC 3464), quoting the headers of message ``mid``."""
    return (
        "From: MAILER-DAEMON@mx.own.example (Mail Delivery System)\r\n"
        "To: sales@own.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(now())}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\r\n'
        "\r\n--B1\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        "\r\n--B1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.own.example\r\n"
        "Arrival-Date: Fri, 27 Nov 2026 10:00:00 +0900 (JST)\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <x>: Recipient address rejected\r\n"
        "\r\n--B1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: sales@own.example\r\nTo: {recipient}\r\nMessage-ID: {mid}\r\n"
        "\r\n--B1--\r\n"
    ).encode()


def sent_before(engine: Engine, person_id: int, address: str, mid: str) -> None:
    """The ledger row of an earlier mailing to ``address`` with Message-ID ``mid``."""
    with engine.begin() as conn:
        conn.execute(
            insert(Delivery),
            {
                "campaign": "earlier",
                "person_id": person_id,
                "step": 1,
                "channel": "main",
                "address": address,
                "message_id": mid,
                "status": "sent",
                "created_at": now(),
                "sent_at": now(),
            },
        )


def unsubscribe_mail(to: str, sender: str) -> bytes:
    """What a mail client sends when the reader presses "unsubscribe": an empty mail."""
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = "unsubscribe"
    m["Message-ID"] = "<unsub-1@client.example>"
    m["Date"] = format_datetime(now())
    m.set_content("")
    return m.as_bytes()


def _execute(engine: Engine, cfg: Any, channel: Any) -> dict[str, int]:
    plan_id = approved_plan(engine, cfg, "news")
    out: dict[str, int] = {}
    for batch in open_batches(engine, plan_id, 100):
        for k, v in send_batch(engine, cfg, "news", plan_id, batch, channel).items():
            out[k] = out.get(k, 0) + v
    return out


@pytest.mark.parametrize("kind", ["outbox", "smtp"])
def test_opt_out_between_dry_run_and_run_is_honoured(
    engine: Engine, tmp_path: Path, kind: str
) -> None:
    ids = seed_people(engine)
    for who in ("hanako", "mika", "taro"):
        consent(engine, ids[who], "opted_in")
    with smtp_server() as (box, port):
        spec = (
            {"type": "outbox", "path": "out"}
            if kind == "outbox"
            else {"type": "smtp", "host": "127.0.0.1", "port": port}
        )
        cfg = _cfg(tmp_path, spec)
        view = plan(engine, cfg, "news")
        assert view.counts["send"] == 3
        # After the approval: hanako unsubscribes by mail, mika's address bounces (a DSN
        # about an earlier mailing to her).
        sent_before(engine, ids["mika"], "mika@acme.example", "<kz.news.1.1.x@own.example>")
        item_to = next(
            str(m["List-Unsubscribe"]) for m in [_preview_message(cfg, engine, ids["hanako"])]
        )
        mailto = item_to.split("mailto:", 1)[1].split("?", 1)[0]
        res = apply_feedback(
            engine,
            cfg,
            [unsubscribe_mail(mailto, "hanako@acme.example"), dsn("mika@acme.example")],
            source="imap INBOX",
        )
        assert (res.unsubscribes, res.bounces) == (1, 1)
        if kind == "outbox":
            channel: Any = OutboxChannel(tmp_path / "out", name="main")
        else:
            channel = SmtpChannel(lambda: smtplib.SMTP("127.0.0.1", port), name="main")
        counts = _execute(engine, cfg, channel)
        channel.close()
        delivered = (
            [p.name for p in (tmp_path / "out").glob("*.eml")] if kind == "outbox" else box.raw
        )
    assert counts == {"sent": 1, "skipped": 2}
    assert len(delivered) == 1
    with engine.connect() as conn:
        rows = dict(conn.execute(select(PlanEntry.person_id, PlanEntry.outcome_reason)).all())
    assert str(rows[ids["hanako"]]).startswith("opted out of marketing_mail (imap INBOX")
    assert str(rows[ids["mika"]]).startswith("suppressed: bounce")


def _preview_message(cfg: Any, engine: Engine, pid: int) -> EmailMessage:
    from flows.push.campaign_render import build
    from warehouse.activation.audience import profiles

    with engine.connect() as conn:
        prof = profiles(conn, [pid])[pid]
    item, _ = build(
        cfg,
        "news",
        cfg.campaign("news"),
        1,
        prof,
        prof["primary_email"],
        cfg.unsubscribe_secret(),
        now(),
    )
    return message_from_bytes(item.data, policy=policy.default)  # type: ignore[return-value]


def test_unsubscribe_loop_through_a_real_smtp_server(engine: Engine, tmp_path: Path) -> None:
    """Send, the reader replies to List-Unsubscribe, the reply lands, the next plan skips them."""
    ids = seed_people(engine)
    consent(engine, ids["hanako"], "opted_in")
    with smtp_server() as (box, port):
        cfg = _cfg(tmp_path, {"type": "smtp", "host": "127.0.0.1", "port": port})
        plan(engine, cfg, "news")
        ch = SmtpChannel(lambda: smtplib.SMTP("127.0.0.1", port), name="main")
        assert _execute(engine, cfg, ch) == {"sent": 1}
        (sent,) = box.messages()
        target = str(sent["List-Unsubscribe"]).split("mailto:", 1)[1].split("?", 1)[0]
        with smtplib.SMTP("127.0.0.1", port) as client:  # the reader's mail client
            client.sendmail(
                "hanako@acme.example", [target], unsubscribe_mail(target, "hanako@acme.example")
            )
        arrived = box.raw[-1]
        ch.close()
    res = apply_feedback(engine, cfg, [arrived, arrived], source="imap INBOX")
    assert res.unsubscribes == 1  # the same mail seen twice is one opt-out
    again = plan(engine, cfg.model_copy(), "news")
    assert [x.action for x in again.lines if x.person_id == ids["hanako"]] == []  # already sent
    # a new campaign to the same person is now refused
    cfg2 = make_cfg(
        tmp_path,
        segments={"customers": {"field": "person.email", "exists": True}},
        campaigns={"news2": {"segment": "customers", "channel": "main", "steps": [STEP]}},
        outbound={"channels": {"main": {"type": "outbox"}}},
    )
    view = plan(engine, cfg2, "news2")
    line = next(x for x in view.lines if x.person_id == ids["hanako"])
    assert line.action == "skip" and "opted out" in str(line.reason)


def test_forged_or_foreign_tokens_change_nothing(engine: Engine, tmp_path: Path) -> None:
    ids = seed_people(engine)
    consent(engine, ids["hanako"], "opted_in")
    cfg = _cfg(tmp_path, {"type": "outbox"})
    forged = [
        f"unsubscribe+{ids['hanako']}.marketing_mail.0123456789abcdef@own.example",
        f"unsubscribe+{ids['mika']}.marketing_mail.0123456789abcdef@own.example",
        "unsubscribe@own.example",
        f"unsubscribe+{ids['hanako']}.marketing_mail@own.example",
    ]
    res = apply_feedback(
        engine, cfg, [unsubscribe_mail(a, "attacker@evil.example") for a in forged], source="t"
    )
    assert res.unsubscribes == 0 and res.messages == 4


def _bounced(raw: bytes, sent: dict[str, list[str]]) -> tuple[list[str], int]:
    v = suppressions(raw, received=now(), source="t", ours=lambda mid: sent.get(mid, []))
    return [e.email for e in v.events], v.unproven


def test_dsn_rules_and_a_real_world_bounce() -> None:
    ours = {"<kz.news.1.1.x@own.example>": ["a@x.example"]}
    assert _bounced(dsn("a@x.example"), ours) == (["a@x.example"], 0)
    assert _bounced(dsn("a@x.example", status="4.2.2"), ours) == ([], 0)
    assert _bounced(dsn("a@x.example", action="delayed"), ours) == ([], 0)
    assert _bounced(unsubscribe_mail("a@b.example", "c@d.example"), ours) == ([], 0)
    # msg_43 is a real DSN about a message nobody here sent: read, never acted on ...
    real = (CORPUS / "msg_43.txt").read_bytes()
    assert _bounced(real, {}) == ([], 11)
    # ... and acted on for the one address the ledger says the quoted message went to.
    assert _bounced(real, {"<edab.7804f5cb8070@python.org>": ["xxxxxxx@dot.ca.gov"]}) == (
        ["xxxxxxx@dot.ca.gov"],
        10,
    )


def test_a_forged_dsn_suppresses_no_one(engine: Engine, tmp_path: Path) -> None:
    """A DSN anyone can send: about no message of ours, about ours but naming someone it was
    not sent to, or with no quoted message at all. None of them suppresses; the real one does."""
    ids = seed_people(engine)
    consent(engine, ids["taro"], "opted_in")
    consent(engine, ids["hanako"], "opted_in")
    mid = "<kz.news.1.7.abc@own.example>"
    sent_before(engine, ids["taro"], "taro@kansai.example", mid)
    cfg = _cfg(tmp_path, {"type": "outbox"})
    forged = [
        dsn("hanako@acme.example", mid="<made-up@evil.example>"),
        dsn("hanako@acme.example", mid=mid),  # our message, but it never went to hanako
        dsn("hanako@acme.example").split(b"\r\n--B1\r\nContent-Type: text/rfc822")[0]
        + b"\r\n--B1--\r\n",
    ]
    res = apply_feedback(engine, cfg, forged, source="imap INBOX")
    assert (res.messages, res.bounces, res.unproven) == (3, 0, 3)
    view = plan(engine, cfg, "news")
    assert {x.person_id: x.action for x in view.lines}[ids["hanako"]] == "send"
    real = apply_feedback(engine, cfg, [dsn("taro@kansai.example", mid=mid)], source="imap")
    assert (real.bounces, real.unproven) == (1, 0)
    line = next(x for x in plan(engine, cfg, "news").lines if x.person_id == ids["taro"])
    assert line.action == "skip" and "suppressed: bounce" in str(line.reason)


def test_feedback_folder_is_scanned_once(engine: Engine, tmp_path: Path) -> None:
    ids = seed_people(engine)
    consent(engine, ids["taro"], "opted_in")
    folder = tmp_path / "bounces"
    folder.mkdir()
    (folder / "1.eml").write_bytes(dsn("taro@kansai.example"))
    sent_before(engine, ids["taro"], "taro@kansai.example", "<kz.news.1.1.x@own.example>")
    cfg = _cfg(tmp_path, {"type": "outbox"}, feedback=["bounces"])
    first = scan_folders(engine, cfg)
    second = scan_folders(engine, cfg)
    assert (first.messages, first.bounces) == (1, 1)
    assert second.messages == 0
    view = plan(engine, cfg, "news")
    line = next(x for x in view.lines if x.person_id == ids["taro"])
    assert line.action == "skip" and "suppressed: bounce" in str(line.reason)
