"""Planning a campaign and finding its approved plan, free of Prefect (executing the plan is
``flows.push.campaign_send``; ``flows.push.campaigns`` wraps both in tasks).

A dry run stores a plan: for every member of the segment and every step that is due, either
"send" or "skip, because …". That stored plan is the approval gate: the real run executes
exactly its "send" lines — people who joined the segment since are not added — and re-asks
consent, suppression and the frequency cap for each recipient right before the send, so
someone who opted out after the dry run is skipped with the reason recorded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from flows.push.campaign_render import build, context_for, language_of, pick, render
from flows.push.config import Campaign, PushConfig, QuietHours
from kizuna.errors import FatalError
from warehouse.activation import ledger
from warehouse.activation.audience import customers, profiles, utc
from warehouse.activation.consent import may_send_many
from warehouse.activation.segment_schema import entered_since, snapshot
from warehouse.activation.segments import Context, members
from warehouse.db import write_transaction
from warehouse.state import now as utcnow

Clock = Callable[[], datetime]


@dataclass
class PlanLine:
    person_id: int
    step: int
    action: str
    reason: str | None
    address: str | None
    name: str = ""
    subject: str = ""


@dataclass
class PlanView:
    plan_id: int
    campaign: str
    members: int
    entered: int
    exited: int
    lines: list[PlanLine] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(x.action for x in self.lines)


def segment_context(cfg: PushConfig, as_of: datetime) -> Context:
    return Context(as_of=as_of, time_zone=cfg.time_zone, segments=cfg.segments)


def plan(engine: Engine, cfg: PushConfig, name: str, *, as_of: datetime | None = None) -> PlanView:
    """The dry run: decide who gets which step, store it as the plan a real run will execute."""
    c = cfg.campaign(name)
    at = utc(as_of or utcnow())
    secret = cfg.unsubscribe_secret()
    with write_transaction(engine) as conn:
        ids = members(conn, cfg.segment(c.segment), segment_context(cfg, at))
        snap = snapshot(conn, c.segment, ids, at)
        ids = customers(conn, ids)  # one line per customer, however many records match
        if c.audience == "new":
            # Members at the first dry run are the baseline; only later entrants are due.
            first = ledger.first_plan_time(conn, name)
            newcomers = (
                entered_since(conn, c.segment, first + timedelta(microseconds=1))
                if first is not None
                else set()
            )
            fresh = set(customers(conn, sorted(newcomers)))
            ids = [p for p in ids if p in fresh]
        done = ledger.deliveries(conn, name)
        due: list[tuple[int, int, str | None]] = []
        for pid in ids:
            step, note = _due_step(c, pid, done, at)
            if step is not None:
                due.append((pid, step, note))
        kind = cfg.outbound.channels[c.channel].type
        decisions = may_send_many(conn, [p for p, _, _ in due], c.purpose, kind)
        caps: dict[int, int] = {}
        if cfg.outbound.frequency_cap is not None:
            since = at - timedelta(days=cfg.outbound.frequency_cap.days)
            caps = ledger.sent_counts(conn, [p for p, _, _ in due], since)
        profs = profiles(conn, [p for p, _, _ in due])
        lines: list[PlanLine] = []
        for pid, step, note in due:
            d = decisions[pid]
            prof = profs.get(pid, {})
            # Kept for the customer's record that gives the address (see audience.members).
            line = PlanLine(d.recipient or pid, step, "send", note, d.address, _name(prof))
            if not d.allowed:
                line.action, line.reason = "skip", d.reason
            elif _capped(cfg, caps.get(pid, 0)):
                line.action, line.reason = "skip", _cap_reason(cfg)
            else:
                try:
                    _, charset_note = build(cfg, name, c, step, prof, d.address or "", secret, at)
                    line.subject = _subject(c, step, prof, cfg)
                    line.reason = charset_note or note
                except Exception as exc:  # a template error is this line's problem
                    line.action, line.reason = "skip", f"template error: {exc}"
            lines.append(line)
        counts = Counter(x.action for x in lines)
        plan_id = ledger.create_plan(
            conn,
            name,
            as_of=at,
            config_hash=cfg.campaign_hash(name),
            entries=[
                {
                    "person_id": x.person_id,
                    "step": x.step,
                    "action": x.action,
                    "reason": x.reason,
                    "address": x.address,
                }
                for x in lines
            ],
            counts=dict(counts),
        )
    return PlanView(plan_id, name, snap.members, snap.entered, snap.exited, lines)


def _due_step(
    c: Campaign, pid: int, done: dict[tuple[int, int], tuple[str, datetime | None]], at: datetime
) -> tuple[int | None, str | None]:
    """The next step this person should get now (and a note), or None."""
    for no, step in enumerate(c.steps, start=1):
        row = done.get((pid, no))
        if row is None:
            if no == 1:
                return 1, None
            prev = done.get((pid, no - 1))
            if prev is None or prev[0] != "sent" or prev[1] is None:
                return None, None
            if utc(prev[1]) + timedelta(days=step.after_days) <= at:
                return no, None
            return None, None
        if row[0] == "pending":
            return no, "in doubt from an earlier run: the channel is asked before any resend"
        if row[0] == "resend":
            return no, "in doubt earlier; a person chose to send it again"
        if row[0] in ("failed", "held"):
            return None, None
    return None, None


def _name(prof: dict[str, Any]) -> str:
    return str(prof.get("full_name") or prof.get("primary_email") or prof.get("id") or "")


def _subject(c: Campaign, step: int, prof: dict[str, Any], cfg: PushConfig) -> str:
    _, tpl = pick(c.steps[step - 1], language_of(prof, c.default_language))
    return render(tpl.subject, context_for(prof, cfg.company)).strip()


def _capped(cfg: PushConfig, sent: int) -> bool:
    cap = cfg.outbound.frequency_cap
    return cap is not None and sent >= cap.max


def _cap_reason(cfg: PushConfig) -> str:
    cap = cfg.outbound.frequency_cap
    assert cap is not None
    return f"frequency cap: {cap.max} in {cap.days} days already sent"


def in_quiet_hours(q: QuietHours | None, at: datetime, zone: str) -> bool:
    if q is None:
        return False
    local = utc(at).astimezone(ZoneInfo(zone)).time()
    if q.start <= q.end:
        return q.start <= local < q.end
    return local >= q.start or local < q.end


def recipient_zone(prof: dict[str, Any], default: str) -> str:
    zone = (prof.get("attributes") or {}).get("time_zone")
    if isinstance(zone, str):
        try:
            ZoneInfo(zone)
            return zone
        except (KeyError, ValueError):
            pass
    return default


# ---------------------------------------------------------------------------------------
# Executing


def approved_plan(engine: Engine, cfg: PushConfig, name: str) -> int:
    """The plan a real run executes; with ``approval: auto`` a fresh one is made first."""
    c = cfg.campaign(name)
    with engine.connect() as conn:
        current = ledger.current_plan(conn, name)
    if c.approval == "auto" and (current is None or current.status == "planned"):
        return plan(engine, cfg, name).plan_id
    if current is None:
        raise FatalError(
            f"campaign {name!r} has no approved plan: run "
            f"`kizuna campaigns run {name} --dry-run`, check it, then run it for real"
        )
    if current.config_hash != cfg.campaign_hash(name):
        raise FatalError(
            f"campaign {name!r} or its segment changed since the dry run (plan "
            f"{current.id}); run `kizuna campaigns run {name} --dry-run` again"
        )
    return int(current.id)


def open_batches(engine: Engine, plan_id: int, size: int) -> list[list[int]]:
    with write_transaction(engine) as conn:
        ledger.start_plan(conn, plan_id, utcnow())
        ids = ledger.open_entry_ids(conn, plan_id)
    return [ids[i : i + size] for i in range(0, len(ids), size)]
