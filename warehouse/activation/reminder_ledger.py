"""The reminder ledger: one row per condition occurrence, opened and resolved as conditions
come and go, and the delivery state of its notice (pending → sending → sent).

Notices go out as digests (one message per rep per day, see ``flows.push.reminder_run``):
the reminders in one digest share its Message-ID in ``digest_id``, written with
``sending`` before the send, so a digest left in doubt by a crash is asked about at the
channel and never sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from warehouse import schema as t
from warehouse.activation.audience import utc
from warehouse.activation.ledger_schema import Reminder
from warehouse.activation.reminders import Condition
from warehouse.write.upsert import chunks


@dataclass(frozen=True)
class Reconciled:
    opened: int
    resolved: int
    reopened: int


def reconcile(
    conn: Connection,
    rule: str,
    conditions: Sequence[Condition],
    at: datetime,
    message_id: Any,
) -> Reconciled:
    """Open a reminder for each new condition, resolve those whose condition cleared.

    ``message_id(condition) -> str`` gives the deterministic Message-ID of its notice.
    """
    rows = conn.execute(
        select(
            Reminder.id,
            Reminder.subject_kind,
            Reminder.subject_id,
            Reminder.instance,
            Reminder.status,
        ).where(Reminder.rule == rule)
    ).all()
    known = {(r.subject_kind, int(r.subject_id), r.instance): r for r in rows}
    current = {c.key: c for c in conditions}
    ts = utc(at)
    new = [c for k, c in current.items() if k not in known]
    if new:
        conn.execute(
            insert(Reminder),
            [
                {
                    "rule": c.rule,
                    "subject_kind": c.subject_kind,
                    "subject_id": c.subject_id,
                    "instance": c.instance,
                    "owner_id": c.owner_id,
                    "status": "open",
                    "title": c.title,
                    "facts": c.facts,
                    "opened_at": ts,
                    "message_id": message_id(c),
                    "delivery": "pending" if c.owner_id is not None else "no_owner",
                }
                for c in new
            ],
        )
    back = [int(r.id) for k, r in known.items() if k in current and r.status == "resolved"]
    gone = [int(r.id) for k, r in known.items() if k not in current and r.status == "open"]
    for part in chunks(back, 900):  # the same occurrence again: reopen, never resend
        conn.execute(
            update(Reminder).where(Reminder.id.in_(part)).values(status="open", resolved_at=None)
        )
    for part in chunks(gone, 900):
        conn.execute(
            update(Reminder).where(Reminder.id.in_(part)).values(status="resolved", resolved_at=ts)
        )
    return Reconciled(opened=len(new), resolved=len(gone), reopened=len(back))


def undelivered(conn: Connection) -> list[Row[Any]]:
    """Open reminders whose notice is not known to have gone out (pending or in doubt)."""
    s = t.table(t.StaffUser)
    q = (
        select(
            Reminder.id,
            Reminder.rule,
            Reminder.title,
            Reminder.facts,
            Reminder.message_id,
            Reminder.digest_id,
            Reminder.delivery,
            Reminder.opened_at,
            Reminder.owner_id,
            s.c.email.label("owner_email"),
            s.c.name.label("owner_name"),
        )
        .join(s, s.c.id == Reminder.owner_id)
        .where(Reminder.status == "open", Reminder.delivery.in_(("pending", "sending")))
        .order_by(Reminder.owner_id, Reminder.id)
    )
    return list(conn.execute(q).all())


def set_delivery(
    conn: Connection,
    reminder_ids: Sequence[int],
    state: str,
    at: datetime,
    digest_id: str | None = None,
) -> None:
    """Move reminders to ``state``; ``sending`` records the digest they go out in."""
    values: dict[str, Any] = {"delivery": state}
    if state == "sent":
        values["sent_at"] = utc(at)
    if digest_id is not None:
        values["digest_id"] = digest_id
    for part in chunks(list(reminder_ids), 900):
        conn.execute(update(Reminder).where(Reminder.id.in_(part)).values(**values))


def last_digest_at(conn: Connection, owner_id: int) -> datetime | None:
    """When this rep's latest digest went out (for "one digest a day")."""
    q = select(func.max(Reminder.sent_at)).where(
        Reminder.owner_id == owner_id, Reminder.delivery == "sent"
    )
    ts = conn.execute(q).scalar()
    return utc(ts) if ts is not None else None


def open_reminders(conn: Connection) -> list[Row[Any]]:
    q = select(Reminder).where(Reminder.status == "open").order_by(Reminder.id)
    return list(conn.execute(q).all())
