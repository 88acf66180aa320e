"""Executing an approved campaign plan, free of Prefect (``flows.push.campaigns`` wraps it).

Per group of recipients: consent, suppression and the frequency cap are asked again, each
message is built (a recipient whose message cannot be built is skipped with the reason and
never blocks the rest), the ledger rows are claimed, then each message is sent and marked.
The whole run holds the campaign's lease (:func:`campaign_lease`), so a second run of the
same campaign — from the CLI while ``kizuna serve`` picked it up — waits or says who has it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import Connection, Engine

from connectors.channel import Channel, Outgoing
from flows.push.campaign_render import build, message_id
from flows.push.campaign_run import _cap_reason, _capped, in_quiet_hours, recipient_zone
from flows.push.config import Campaign, PushConfig
from kizuna.errors import BadRecord, SendInDoubt
from warehouse import lease
from warehouse.activation import ledger
from warehouse.activation.audience import profiles
from warehouse.activation.consent import may_send_many
from warehouse.state import now as utcnow

Clock = Callable[[], datetime]


@contextmanager
def campaign_lease(
    engine: Engine,
    cfg: PushConfig,
    name: str,
    *,
    run_id: str,
    wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[lease.HeldLease]:
    """Hold ``campaign:<name>`` while planning or sending it (see ``warehouse.lease``)."""
    with lease.held(
        engine,
        f"campaign:{name}",
        run_id=run_id,
        what=f"campaign {name} is being run",
        wait=wait,
        zone=cfg.time_zone,
        on_wait=on_wait,
    ) as held:
        yield held


class Pacer:
    """Spaces sends to a channel's ``rate_per_minute`` (sleep injected for tests)."""

    def __init__(
        self,
        rate_per_minute: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 60.0 / rate_per_minute if rate_per_minute else 0.0
        self.clock, self.sleep = clock, sleep
        self.last: float | None = None

    def wait(self) -> None:
        if self.interval and self.last is not None:
            gap = self.last + self.interval - self.clock()
            if gap > 0:
                self.sleep(gap)
        self.last = self.clock()


GROUP = 50
"""Recipients whose consent is checked and ledger rows claimed in one transaction.

Claiming a group is safe for exactly-once: a claimed row that was never sent is in doubt only
until the channel says "not sent". Each send is still marked ``sent`` on its own, so a crash
leaves at most one message whose fate the channel must be asked about.
"""


def send_batch(
    engine: Engine,
    cfg: PushConfig,
    name: str,
    plan_id: int,
    entry_ids: list[int],
    channel: Channel,
    *,
    clock: Clock = utcnow,
    pacer: Pacer | None = None,
    owner: str = "",
) -> dict[str, int]:
    """Act on one batch of plan lines; returns outcome counts.

    ``owner`` is the token of the campaign lease this run holds (written into each claim,
    so a pending row is in doubt only once that lease is gone). ``TransientError`` from the
    channel propagates (the Prefect task retries the batch); the line being sent stays
    ``pending`` in the ledger, which the retry resolves.
    """
    c = cfg.campaign(name)
    run = _Run(cfg, name, c, plan_id, channel, clock, pacer, owner)
    out: Counter[str] = Counter()
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")  # every transaction below writes
        with conn.begin():
            lines = [
                x
                for x in ledger.entries(conn, entry_ids)
                if x.plan_id == plan_id and x.outcome in ledger.OPEN_OUTCOMES
            ]
            profs = profiles(conn, [x.person_id for x in lines])
        for i in range(0, len(lines), GROUP):
            out.update(run.group(conn, lines[i : i + GROUP], profs))
        with conn.begin():
            ledger.finish_plan_if_done(conn, plan_id, clock())
    return dict(out)


class _Run:
    """One batch's sending state: the campaign, the channel, its pace and the clock."""

    def __init__(
        self,
        cfg: PushConfig,
        name: str,
        c: Campaign,
        plan_id: int,
        channel: Channel,
        clock: Clock,
        pacer: Pacer | None,
        owner: str,
    ) -> None:
        self.cfg, self.name, self.c, self.plan_id = cfg, name, c, plan_id
        self.channel, self.clock, self.owner = channel, clock, owner
        self.kind = cfg.outbound.channels[c.channel].type
        rate = getattr(cfg.outbound.channels[c.channel], "rate_per_minute", None)
        self.pacer = pacer or Pacer(rate)
        self.secret = cfg.unsubscribe_secret()

    def _message(
        self, line: Any, prof: dict[str, Any], address: str, at: datetime
    ) -> tuple[Outgoing, str | None]:
        """The message, or ``BadRecord`` naming why it cannot be built (any reason at all:
        a template error, CR/LF in a header, a header the mail library refuses)."""
        try:
            return build(self.cfg, self.name, self.c, line.step, prof, address, self.secret, at)
        except TemplateError as exc:
            raise BadRecord(f"cannot build the message: template error: {exc}") from None
        except Exception as exc:
            raise BadRecord(f"cannot build the message: {type(exc).__name__}: {exc}") from None

    def group(
        self, conn: Connection, lines: list[Any], profs: dict[int, dict[str, Any]]
    ) -> Counter[str]:
        out: Counter[str] = Counter()
        now = self.clock()
        cfg, c = self.cfg, self.c
        ready: list[tuple[Any, ledger.Want, Outgoing, str | None]] = []
        with conn.begin():
            # Consent, suppression and the frequency cap, asked again right before sending.
            pids = [x.person_id for x in lines]
            decisions = may_send_many(conn, pids, c.purpose, self.kind)
            caps: dict[int, int] = {}
            if cfg.outbound.frequency_cap is not None:
                since = now - timedelta(days=cfg.outbound.frequency_cap.days)
                caps = ledger.sent_counts(conn, pids, since)
            for line in lines:
                d = decisions[line.person_id]
                prof = profs.get(line.person_id, {"id": line.person_id})
                zone = recipient_zone(prof, cfg.time_zone)
                if not d.allowed:
                    ledger.set_outcome(conn, line.id, "skipped", d.reason, now)
                    out["skipped"] += 1
                elif _capped(cfg, caps.get(line.person_id, 0)):
                    ledger.set_outcome(conn, line.id, "skipped", _cap_reason(cfg), now)
                    out["skipped"] += 1
                elif in_quiet_hours(cfg.outbound.quiet_hours, now, zone):
                    q = cfg.outbound.quiet_hours
                    assert q is not None
                    why = f"quiet hours in {zone} until {q.end:%H:%M}; the next run sends it"
                    ledger.set_outcome(conn, line.id, "deferred", why, now)
                    out["deferred"] += 1
                else:
                    try:
                        item, note = self._message(line, prof, d.address or "", now)
                    except BadRecord as exc:
                        ledger.set_outcome(conn, line.id, "skipped", exc.reason, now)
                        out["skipped"] += 1
                        continue
                    mid = message_id(
                        self.secret, self.name, line.person_id, line.step, cfg.outbound.domain
                    )
                    key = ledger.Key(self.name, line.person_id, line.step)
                    ready.append((line, ledger.Want(key, mid, d.address), item, note))
            claims = ledger.claim(
                conn,
                [w for _, w, _, _ in ready],
                channel=self.channel.name,
                plan_id=self.plan_id,
                at=now,
                owner=self.owner,
            )
            todo: list[tuple[Any, ledger.Want, ledger.Claim, Outgoing, str | None]] = []
            for line, want, item, note in ready:
                cl = claims[want.key]
                if cl.status in ("sent", "failed"):
                    outcome = "already_sent" if cl.status == "sent" else "failed"
                    ledger.set_outcome(conn, line.id, outcome, f"delivery row was {cl.status}", now)
                    out[outcome] += 1
                elif cl.status == "held":
                    why = "held for a person: see `kizuna campaigns status`"
                    ledger.set_outcome(conn, line.id, "in_doubt", why, now)
                    out["in_doubt"] += 1
                elif cl.status == "busy":
                    out["busy"] += 1  # another live run is sending it; the line stays open
                else:
                    todo.append((line, want, cl, item, note))
        # The pending rows are committed: from here on a crash leaves a send in doubt.
        for line, want, cl, item, note in todo:
            out[self.one(conn, line, want, cl, item, note)] += 1
        return out

    def _hold(self, conn: Connection, line: Any, key: ledger.Key, why: str) -> str:
        now = self.clock()
        with conn.begin():
            ledger.mark(conn, key, status="held", at=now, detail=why)
            ledger.set_outcome(conn, line.id, "in_doubt", why, now)
        return "in_doubt"

    def _confirmed(self, conn: Connection, line: Any, key: ledger.Key, why: str) -> str:
        now = self.clock()
        with conn.begin():
            ledger.mark(conn, key, status="sent", at=now, detail=f"recovered: {why}")
            ledger.set_outcome(conn, line.id, "sent", why, now)
        return "recovered"

    def one(
        self,
        conn: Connection,
        line: Any,
        want: ledger.Want,
        cl: ledger.Claim,
        item: Outgoing,
        note: str | None,
    ) -> str:
        now = self.clock()
        key = want.key
        if not cl.fresh:
            known = self.channel.was_sent(cl.message_id)
            if known is True:
                return self._confirmed(conn, line, key, "the channel had it after a crash")
            if known is None and self.c.in_doubt == "hold":
                why = "in doubt after a crash and the channel cannot tell; held for a person"
                return self._hold(conn, line, key, why)
        try:
            self.pacer.wait()
            self.channel.send(item)
        except BadRecord as exc:
            with conn.begin():
                ledger.mark(conn, key, status="failed", at=now, detail=exc.reason)
                ledger.set_outcome(conn, line.id, "failed", exc.reason, now)
            return "failed"
        except SendInDoubt as exc:
            if self.channel.was_sent(cl.message_id) is True:
                return self._confirmed(conn, line, key, "the channel had it after the link broke")
            return self._hold(conn, line, key, f"{exc}; held for a person")
        with conn.begin():
            ledger.mark(conn, key, status="sent", at=now, detail=note)
            ledger.set_outcome(conn, line.id, "sent", note, now)
        return "sent"
