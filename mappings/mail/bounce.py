"""Recognising bounces (RFC 3464 DSN) and complaints (RFC 5965 ARF) among incoming mail.

Only a permanent failure suppresses an address: a ``multipart/report`` of report-type
``delivery-status`` whose per-recipient block says ``Action: failed`` with a ``5.x.x``
status. Delays (``4.x.x``) and successes are ignored, because suppressing on them would
silence people whose mailbox was merely full for an afternoon. Pure: bytes in, events out.
"""

from __future__ import annotations

import email
import re
from datetime import datetime
from email import policy
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from warehouse.activation.consent import SuppressionEvent
from warehouse.identity.normalize import normalize_email

_STATUS = re.compile(r"^\s*(\d)\.\d{1,3}\.\d{1,3}")


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=policy.compat32)


def received_at(msg: Message, fallback: datetime) -> datetime:
    try:
        ts = parsedate_to_datetime(str(msg.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return fallback
    return ts if ts.tzinfo else fallback


def _addr(field: str | None) -> str | None:
    """``rfc822; user@host`` → ``user@host`` (address types other than rfc822 are skipped)."""
    if not field:
        return None
    kind, _, value = str(field).partition(";")
    if not value:
        value, kind = kind, "rfc822"
    if kind.strip().lower() != "rfc822":
        return None
    return normalize_email(value.strip().strip("<>"))


def _report_blocks(msg: Message, report_type: str, part_type: str) -> list[Message]:
    if msg.get_content_type() != "multipart/report":
        return []
    if (msg.get_param("report-type") or "").lower() != report_type:  # type: ignore[union-attr]
        return []
    for part in msg.walk():
        if part.get_content_type() == part_type:
            payload = part.get_payload()
            if isinstance(payload, list):
                return [p for p in payload if isinstance(p, Message)]
            if isinstance(payload, str):  # some MTAs: a single unparsed block
                return [email.message_from_string(b) for b in re.split(r"\n\s*\n", payload)]
    return []


def bounces(raw: bytes, *, received: datetime, source: str) -> list[SuppressionEvent]:
    """Hard-bounced recipients of one DSN; an empty list for any other mail."""
    msg = parse(raw)
    blocks = _report_blocks(msg, "delivery-status", "message/delivery-status")
    at = received_at(msg, received)
    out: list[SuppressionEvent] = []
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        action = str(block.get("Action", "")).strip().lower()
        status = _STATUS.match(str(block.get("Status", "")))
        rcpt = _addr(block.get("Final-Recipient")) or _addr(block.get("Original-Recipient"))
        if action == "failed" and status is not None and status.group(1) == "5" and rcpt:
            out.append(SuppressionEvent(email=rcpt, reason="bounce", source=source, at=at))
    return out


def complaints(raw: bytes, *, received: datetime, source: str) -> list[SuppressionEvent]:
    """Spam complaints relayed by a mailbox provider's feedback loop (ARF)."""
    msg = parse(raw)
    blocks = _report_blocks(msg, "feedback-report", "message/feedback-report")
    if not blocks:
        return []
    at = received_at(msg, received)
    fields = blocks[0]
    rcpt = _addr(fields.get("Original-Rcpt-To"))
    if rcpt is None:
        for part in msg.walk():
            if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
                inner = part.get_payload()
                orig = inner[0] if isinstance(inner, list) and inner else None
                if isinstance(orig, Message):
                    tos = getaddresses([str(orig.get("To", ""))])
                    rcpt = normalize_email(tos[0][1]) if tos else None
                break
    if rcpt is None:
        return []
    return [SuppressionEvent(email=rcpt, reason="complaint", source=source, at=at)]
