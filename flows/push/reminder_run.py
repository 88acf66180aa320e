"""Evaluating the workspace's reminder rules and delivering new reminders to their owners,
one digest per rep per day (``reminders.digest``).

Free of Prefect (``flows.push.reminders`` wraps it). Delivery follows the same discipline as
campaigns: the reminder row is the ledger — ``pending`` → ``sending`` (committed before the
send) → ``sent`` — and a ``sending`` row found by a later run is asked about at the channel
by its Message-ID before it is sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parseaddr
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from connectors.channel import Channel, Outgoing
from connectors.mail.compose import Envelope, compose
from flows.push import reminder_digest as digest
from flows.push.config import PushConfig, Rule
from kizuna.errors import SendInDoubt
from warehouse import lease
from warehouse.activation import reminder_ledger as ledger
from warehouse.activation import reminders as rem
from warehouse.activation.consent import may_send
from warehouse.db import write_transaction
from warehouse.state import now as utcnow

LEASE_WAIT = 300.0
"""Seconds a delivering run waits for another one to finish before it stands back."""


@dataclass
class ReminderSummary:
    opened: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    """Reminders delivered (in ``digests`` messages)."""
    digests: int = 0
    recovered: int = 0
    skipped: list[str] = field(default_factory=list)
    in_doubt: list[str] = field(default_factory=list)
    """Digests whose link broke after the channel took them (SMTP after DATA) and that the
    channel cannot confirm: left ``sending``, asked about again by the next run."""


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
) -> ledger.Reconciled:
    """Open and resolve one rule's reminders (no sending)."""
    at = as_of or utcnow()
    rule = cfg.reminders.rules[name]
    found = conditions(engine, cfg, name, rule, at)
    secret = cfg.unsubscribe_secret()
    domain = cfg.outbound.domain
    with write_transaction(engine) as conn:
        return ledger.reconcile(
            conn, name, found, at, lambda c: reminder_message_id(secret, c, domain)
        )


def digest_message_id(secret: bytes, owner_id: int, day: date, ids: list[int], domain: str) -> str:
    """Deterministic per (rep, day, reminders): a retry of the same digest has the same id."""
    key = f"digest.{owner_id}.{day.isoformat()}.{','.join(map(str, sorted(ids)))}"
    mac = hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:20]
    return f"<kz.digest.{owner_id}.{day:%Y%m%d}.{mac}@{domain}>"


def deliver(
    engine: Engine,
    cfg: PushConfig,
    channel: Channel,
    *,
    clock: Any = utcnow,
    run_id: str = "",
    wait: float = LEASE_WAIT,
) -> ReminderSummary:
    """Each rep's undelivered reminders as one digest (see ``flows.push.reminder_digest``).

    The reminders of a digest are marked ``sending`` with its Message-ID before it goes out;
    a digest found in doubt is asked about at the channel and marked sent if it arrived,
    otherwise its reminders join a new digest (at least once, as README states). A send that
    goes in doubt now (``SendInDoubt``: the link broke after the message was handed over) is
    never retried in this run and never stops the other reps' digests. With ``digest: daily``
    a rep who already had today's digest gets the new reminders tomorrow.
    """
    out = ReminderSummary()
    # One delivering run at a time (``reminders`` lease): two runs at once would both find
    # the same pending reminders and both send the digest.
    with lease.held(
        engine,
        "reminders",
        run_id=run_id or uuid.uuid4().hex,
        what="reminders are being delivered",
        wait=wait,
        zone=cfg.time_zone,
    ):
        with engine.connect() as conn:
            rows = ledger.undelivered(conn)
        by_owner: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_owner[int(row.owner_id)].append(row)
        for owner_id, mine in by_owner.items():
            _deliver_one(engine, cfg, channel, owner_id, mine, clock(), out)
    return out


def _deliver_one(
    engine: Engine,
    cfg: PushConfig,
    channel: Channel,
    owner_id: int,
    rows: list[Any],
    now: datetime,
    out: ReminderSummary,
) -> None:
    zone = ZoneInfo(cfg.time_zone)
    today = now.astimezone(zone).date()
    email = str(rows[0].owner_email)
    for mid in sorted({str(r.digest_id) for r in rows if r.delivery == "sending" and r.digest_id}):
        if channel.was_sent(mid) is True:
            done = [r for r in rows if r.digest_id == mid and r.delivery == "sending"]
            with write_transaction(engine) as conn:
                ledger.set_delivery(conn, [int(r.id) for r in done], "sent", now)
            out.recovered += len(done)
            rows = [r for r in rows if r not in done]
    if not rows:
        return
    with write_transaction(engine) as conn:
        last = ledger.last_digest_at(conn, owner_id)
        if cfg.reminders.digest == "daily" and last and last.astimezone(zone).date() == today:
            return  # today's digest went out; these wait for tomorrow's
        d = may_send(conn, email, "staff_notice", channel.name)
        ids = [int(r.id) for r in rows]
        if not d.allowed:
            ledger.set_delivery(conn, ids, "blocked", now)
            out.skipped.append(f"{email}: {d.reason}")
            return
        mid = digest_message_id(cfg.unsubscribe_secret(), owner_id, today, ids, cfg.outbound.domain)
        ledger.set_delivery(conn, ids, "sending", now, digest_id=mid)
    lang = cfg.reminders.language
    kinds = {name: rule.type for name, rule in cfg.reminders.rules.items()}
    items = [
        digest.item(kinds.get(str(r.rule), "deal_idle"), r.facts or {}, lang, cfg.time_zone)
        for r in rows
    ]
    content = digest.render(str(rows[0].owner_name or email), items, today, lang, cfg.company)
    composed = compose(
        content,
        Envelope(
            sender=cfg.outbound.sender,
            to_name=rows[0].owner_name,
            to_address=email,
            message_id=mid,
            date=now.astimezone(zone),
        ),
    )
    try:
        channel.send(
            Outgoing(
                message_id=mid,
                to_address=email,
                data=composed.as_bytes(),
                sender=parseaddr(cfg.outbound.sender)[1],
            )
        )
    except SendInDoubt as exc:
        if channel.was_sent(mid) is not True:
            out.in_doubt.append(f"{email}: {exc}")
            return  # still `sending` with its Message-ID: the next run asks again
    with write_transaction(engine) as conn:
        ledger.set_delivery(conn, ids, "sent", now)
    out.sent += len(ids)
    out.digests += 1


def run_all(
    engine: Engine, cfg: PushConfig, channel: Channel, as_of: datetime | None = None
) -> ReminderSummary:
    """Every rule, then every undelivered reminder: what one scheduled run does."""
    summary = ReminderSummary()
    for name in cfg.reminders.rules:
        r = evaluate(engine, cfg, name, as_of)
        summary.opened[name] = r.opened
        summary.resolved[name] = r.resolved
    sent = deliver(engine, cfg, channel, clock=(lambda: as_of) if as_of else utcnow)
    summary.sent, summary.recovered, summary.skipped = sent.sent, sent.recovered, sent.skipped
    summary.in_doubt = sent.in_doubt
    summary.digests = sent.digests
    return summary
