"""Consent and suppression: the one place that decides whether a person may be contacted.

特定電子メール法 (the Japanese anti-spam act) makes marketing mail opt-in and asks the sender
to keep the evidence of each consent, so ``consent`` rows are only ever appended: the newest
row per person and purpose is the current state, and every earlier one stays as the record.
Suppression (a hard bounce, a complaint, a global unsubscribe) wins over any consent.

Every channel asks :func:`may_send` (or its batch form :func:`may_send_many`, same rules)
right before it sends; nothing else decides.

Consent is the customer's, not the row's: the answer for a person row looks at every record
of its customer (``audience.members``). The newest consent change on any of them is the
customer's current state, and a suppression other than a bounce on any of their addresses
stops every address: an opt-out given through one address is an opt-out of the person.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, insert, select

from warehouse import schema as t
from warehouse.activation.audience import members, people, utc
from warehouse.identity.keys.normalize import normalize_email
from warehouse.privacy import salt as privacy_salt
from warehouse.state import now
from warehouse.write.upsert import chunks, upsert

Purpose = Literal["marketing_mail", "sales_followup", "staff_notice"]
PURPOSES: dict[str, str] = {
    "marketing_mail": "opt_in",  # 特定電子メール法: only to those who agreed
    "sales_followup": "opt_out",  # existing business relationship: unless they said no
    "staff_notice": "always",  # our own staff: only suppression applies
}
SUPPRESSION_REASONS = ("bounce", "complaint", "unsubscribe", "manual", "erased")
EMAIL_CHANNELS = {"smtp", "outbox", "gmail", "m365", "email"}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    address: str | None = None
    recipient: int | None = None
    """The customer's record that gives ``address`` (the row a ledger entry is kept for)."""


class ConsentEvent(BaseModel):
    """An opt-in or opt-out with its evidence (what a form, an import or a mail said)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    person_id: int
    purpose: Purpose
    status: Literal["opted_in", "unknown", "opted_out"]
    source: str
    evidence: str | None = None
    at: datetime


class SuppressionEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str
    reason: Literal["bounce", "complaint", "unsubscribe", "manual"]
    source: str
    at: datetime


def record_consent(conn: Connection, event: ConsentEvent) -> bool:
    """Append one consent change; the same evidence twice is recorded once (replays are safe)."""
    c = t.Consent
    if event.evidence is not None:
        seen = conn.execute(
            select(c.id).where(
                c.person_id == event.person_id,
                c.purpose == event.purpose,
                c.status == event.status,
                c.evidence == event.evidence,
            )
        ).first()
        if seen is not None:
            return False
    conn.execute(
        insert(c).values(
            person_id=event.person_id,
            purpose=event.purpose,
            status=event.status,
            source=event.source[:200],
            evidence=event.evidence,
            recorded_at=utc(event.at),
        )
    )
    return True


def suppress(conn: Connection, event: SuppressionEvent) -> None:
    email = normalize_email(event.email) or event.email.strip().lower()
    row = {
        "email": email,
        "reason": event.reason,
        "source": event.source[:200],
        "recorded_at": utc(event.at),
        "active": True,
    }
    upsert(conn, t.table(t.Suppression), [row], ["email"])


def lift_suppression(conn: Connection, email: str, source: str) -> None:
    """An admin's deliberate undo (e.g. a bounce that was the server's fault)."""
    s = t.table(t.Suppression)
    conn.execute(
        s.update()
        .where(s.c.email == (normalize_email(email) or email))
        .values(active=False, source=source[:200], recorded_at=now())
    )


def may_send(conn: Connection, target: int | str, purpose: Purpose, channel: str) -> Decision:
    """May this person (by id) or address be contacted for ``purpose`` on ``channel`` now?"""
    if isinstance(target, str):
        email = normalize_email(target)
        if email is None:
            return Decision(False, f"not an email address: {target!r}")
        pe = t.table(t.PersonEmail)
        pid = conn.execute(select(pe.c.person_id).where(pe.c.email == email)).scalar()
        if pid is None:
            return _address_only(conn, email, purpose)
        return may_send_many(conn, [int(pid)], purpose, channel, address={int(pid): email})[
            int(pid)
        ]
    return may_send_many(conn, [target], purpose, channel)[target]


def _address_only(conn: Connection, email: str, purpose: str) -> Decision:
    sup = _suppressions(conn, [email])
    if email in sup:
        return Decision(False, f"suppressed: {sup[email]}", email)
    if PURPOSES[purpose] == "opt_in":
        return Decision(False, "no consent on record (address not linked to a person)", email)
    return Decision(True, "not suppressed", email)


def may_send_many(
    conn: Connection,
    person_ids: Sequence[int],
    purpose: Purpose,
    channel: str,
    *,
    address: dict[int, str] | None = None,
) -> dict[int, Decision]:
    """:func:`may_send` for many people at once (a plan, a send batch): the same rules."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}; use one of {', '.join(PURPOSES)}")
    ids = list(dict.fromkeys(person_ids))
    family = members(conn, ids)
    rows = sorted({r for m in family.values() for r in m})
    p = people()
    pe = t.table(t.PersonEmail)
    persons: dict[int, tuple[datetime | None, str | None]] = {}
    emails: dict[int, list[str]] = {}
    events: dict[int, tuple[str, str, datetime, int]] = {}
    c = t.Consent
    for part in chunks(rows, 900):
        for pid, deleted, primary in conn.execute(
            select(p.c.id, p.c.deleted_at, p.c.primary_email).where(p.c.id.in_(part))
        ):
            persons[int(pid)] = (deleted, primary)
        for pid, em in conn.execute(
            select(pe.c.person_id, pe.c.email).where(pe.c.person_id.in_(part))
        ):
            emails.setdefault(int(pid), []).append(str(em))
        q = select(c.person_id, c.status, c.source, c.recorded_at, c.id).where(
            c.person_id.in_(part), c.purpose == purpose
        )
        for pid, status, source, at, cid in conn.execute(q):
            prev = events.get(int(pid))
            if prev is None or (utc(at), cid) > (utc(prev[2]), prev[3]):
                events[int(pid)] = (status, source, at, int(cid))
    all_emails = {e for v in emails.values() for e in v}
    all_emails |= {pr for _, pr in persons.values() if pr}
    all_emails |= set((address or {}).values())
    sup = _suppressions(conn, all_emails)
    out: dict[int, Decision] = {}
    for pid in ids:
        fam = family[pid]
        live = [r for r in fam if r in persons and persons[r][0] is None]
        # The customer's newest consent change, on whichever of its records it was given.
        latest = max(
            (events[r] for r in fam if r in events), key=lambda e: (utc(e[2]), e[3]), default=None
        )
        owner: dict[str, int] = {}
        for r in live:
            for e in sorted(emails.get(r, [])):
                owner.setdefault(e, r)
        wanted = (address or {}).get(pid)
        primary = persons[pid][1] if pid in persons else None
        if primary is None or primary not in owner:
            primary = next((persons[r][1] for r in live if persons[r][1] in owner), primary)
        d = _decide(
            pid,
            persons.get(pid),
            sorted(owner),
            None if latest is None else latest[:3],
            sup,
            purpose,
            channel,
            wanted or primary,
        )
        out[pid] = replace(d, recipient=owner.get(d.address or "", pid))
    return out


def _decide(
    pid: int,
    person: tuple[datetime | None, str | None] | None,
    emails: list[str],
    consent: tuple[str, str, datetime] | None,
    sup: dict[str, str],
    purpose: str,
    channel: str,
    wanted: str | None,
) -> Decision:
    if person is None:
        return Decision(False, f"unknown person {pid}")
    deleted, primary = person
    if deleted is not None:
        return Decision(False, "person deleted")
    addr = wanted or primary or (sorted(emails)[0] if emails else None)
    if addr is None and channel in EMAIL_CHANNELS:
        return Decision(False, "no email address")
    if addr is not None and sup.get(addr) is not None:
        return Decision(False, f"suppressed: {sup[addr]} ({addr})", addr)
    for e in emails:
        reason = sup.get(e)
        if reason is not None and reason != "bounce":
            return Decision(False, f"suppressed: {reason} ({e})", addr)
    rule = PURPOSES[purpose]
    if consent is not None and consent[0] == "opted_out":
        return Decision(False, f"opted out of {purpose} ({consent[1]}, {_day(consent[2])})", addr)
    if rule == "opt_in":
        if consent is not None and consent[0] == "opted_in":
            return Decision(True, f"opted in ({consent[1]}, {_day(consent[2])})", addr)
        return Decision(False, f"no opt-in for {purpose} (特定電子メール法)", addr)
    return Decision(True, "not opted out" if rule == "opt_out" else "not suppressed", addr)


def _day(ts: datetime) -> str:
    return utc(ts).date().isoformat()


def _suppressions(conn: Connection, emails: Iterable[str]) -> dict[str, str]:
    """Address → why it is suppressed. An erased customer's address is on the list only as
    its salted hash (``warehouse.privacy``): each address is looked up in that form too."""
    s = t.table(t.Suppression)
    wanted = set(emails)
    salt = privacy_salt.existing(conn)
    token = {privacy_salt.address_token(salt, e): e for e in wanted} if salt else {}
    out: dict[str, str] = {}
    for part in chunks(sorted(wanted | set(token)), 900):
        q = select(s.c.email, s.c.reason).where(s.c.email.in_(part), s.c.active.is_(True))
        for em, reason in conn.execute(q):
            out[token.get(str(em), str(em))] = str(reason)
    return out


def history(conn: Connection, person_id: int) -> list[tuple[str, str, str, datetime]]:
    """The evidence trail: (purpose, status, source, recorded_at), oldest first."""
    c = t.Consent
    q = (
        select(c.purpose, c.status, c.source, c.recorded_at)
        .where(c.person_id == person_id)
        .order_by(c.recorded_at, c.id)
    )
    return [(a, b, s, d) for a, b, s, d in conn.execute(q)]
