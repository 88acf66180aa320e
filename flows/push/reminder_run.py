"""Evaluating the workspace's reminder rules and delivering new reminders to their owners.

Free of Prefect (``flows.push.reminders`` wraps it). Delivery follows the same discipline as
campaigns: the reminder row is the ledger — ``pending`` → ``sending`` (committed before the
send) → ``sent`` — and a ``sending`` row found by a later run is asked about at the channel
by its Message-ID before it is sent again.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from sqlalchemy import Engine

from connectors.channel import Channel, Outgoing
from connectors.mail.compose import Content, Envelope, compose
from flows.push.config import PushConfig, Rule
from warehouse.activation import reminders as rem
from warehouse.activation.consent import may_send
from warehouse.db import write_transaction
from warehouse.state import now as utcnow


@dataclass
class ReminderSummary:
    opened: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    recovered: int = 0
    skipped: list[str] = field(default_factory=list)


def conditions(
    engine: Engine, cfg: PushConfig, name: str, rule: Rule, as_of: datetime
) -> list[rem.Condition]:
    tz = cfg.time_zone
    with engine.connect() as conn:
        if rule.type == "deal_idle":
            assert rule.days is not None
            return rem.deal_idle(conn, name, rule.days, as_of)
        if rule.type == "close_date":
            assert rule.within_days is not None
            return rem.close_date(conn, name, rule.within_days, as_of, tz)
        if rule.type == "meeting_no_followup":
            assert rule.business_days is not None
            return rem.meeting_no_followup(
                conn, name, rule.business_days, rule.lookback_days, as_of, tz
            )
        assert rule.days is not None and rule.attribute is not None
        return rem.key_account_quiet(conn, name, rule.days, rule.attribute, rule.values, as_of)


def reminder_message_id(secret: bytes, c: rem.Condition, domain: str) -> str:
    key = f"rem.{c.rule}.{c.subject_kind}.{c.subject_id}.{c.instance}"
    mac = hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:16]
    return f"<kz.rem.{c.subject_kind}.{c.subject_id}.{mac}@{domain}>"


def evaluate(
    engine: Engine, cfg: PushConfig, name: str, as_of: datetime | None = None
) -> rem.Reconciled:
    """Open and resolve one rule's reminders (no sending)."""
    at = as_of or utcnow()
    rule = cfg.reminders.rules[name]
    found = conditions(engine, cfg, name, rule, at)
    secret = cfg.unsubscribe_secret()
    domain = cfg.outbound.domain
    with write_transaction(engine) as conn:
        return rem.reconcile(
            conn, name, found, at, lambda c: reminder_message_id(secret, c, domain)
        )


def _body(row: Any, lang: str) -> Content:
    facts = row.facts or {}
    lines = [row.title, ""]
    lines += [f"- {k}: {v}" for k, v in facts.items()]
    lines += [
        "",
        "Kizuna がこの条件が解消されたことを確認すると、自動的にクローズされます。"
        if lang == "ja"
        else "Kizuna closes this reminder by itself once the condition clears.",
    ]
    return Content(subject=f"[Kizuna] {row.title}", text="\n".join(lines) + "\n")


def deliver(
    engine: Engine, cfg: PushConfig, channel: Channel, *, clock: Any = utcnow
) -> ReminderSummary:
    out = ReminderSummary()
    with engine.connect() as conn:
        rows = rem.undelivered(conn)
    sender = cfg.outbound.sender
    for row in rows:
        now = clock()
        with write_transaction(engine) as conn:
            d = may_send(conn, str(row.owner_email), "staff_notice", channel.name)
            if not d.allowed:
                rem.set_delivery(conn, int(row.id), "blocked", now)
                out.skipped.append(f"{row.owner_email}: {d.reason}")
                continue
            in_doubt = row.delivery == "sending"
            rem.set_delivery(conn, int(row.id), "sending", now)
        if in_doubt and channel.was_sent(str(row.message_id)) is True:
            with write_transaction(engine) as conn:
                rem.set_delivery(conn, int(row.id), "sent", now)
            out.recovered += 1
            continue
        composed = compose(
            _body(row, cfg.reminders.language),
            Envelope(
                sender=sender,
                to_name=row.owner_name,
                to_address=str(row.owner_email),
                message_id=str(row.message_id),
                date=now,
            ),
        )
        channel.send(
            Outgoing(
                message_id=str(row.message_id),
                to_address=str(row.owner_email),
                data=composed.as_bytes(),
                sender=parseaddr(sender)[1],
            )
        )
        with write_transaction(engine) as conn:
            rem.set_delivery(conn, int(row.id), "sent", now)
        out.sent += 1
    return out


def run_all(
    engine: Engine, cfg: PushConfig, channel: Channel, as_of: datetime | None = None
) -> ReminderSummary:
    """Every rule, then every undelivered reminder: what one scheduled run does."""
    summary = ReminderSummary()
    for name in cfg.reminders.rules:
        r = evaluate(engine, cfg, name, as_of)
        summary.opened[name] = r.opened
        summary.resolved[name] = r.resolved
    sent = deliver(engine, cfg, channel)
    summary.sent, summary.recovered, summary.skipped = sent.sent, sent.recovered, sent.skipped
    return summary
