"""Recognising bounces (RFC 3464 DSN) and complaints (RFC 5965 ARF) among incoming mail.

Two uses, one reading of the report:

- :func:`delivery_report` says, for any message, which recipients it reports on (address,
  action, status, diagnostic) and which message of ours it is about: the mail mapping keeps
  that on the bounce activity;
- :func:`suppressions` turns a report into suppressions, but only when it is proof. Anyone can send a message shaped like a DSN, so a report suppresses an address only
  when it quotes the Message-ID of a message Kizuna sent (``ours(message_id)`` gives the
  addresses that message went to, from the delivery ledger) and the address it reports is one
  of those. A forged bounce naming a customer suppresses no one.

Only a permanent failure suppresses: ``Action: failed`` with a ``5.x.x`` status. Delays
(``4.x.x``) and successes do not, because suppressing on them would silence people whose
mailbox was merely full for an afternoon. Pure: bytes and a lookup in, events out.
"""

from __future__ import annotations

import email
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, Literal

from warehouse.activation.consent import SuppressionEvent
from warehouse.identity.keys.normalize import normalize_email

Ours = Callable[[str], Collection[str]]
"""A raw Message-ID (``<…>``) → the addresses Kizuna sent that message to (empty: not ours)."""

MAX_REPORTED = 1000
"""Per-recipient blocks read from one report at most."""
_STATUS = re.compile(r"\s*(\d)\.(\d{1,3})\.(\d{1,3})")
_ANGLE_ID = re.compile(r"<[^<>\s]{1,400}>")


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=policy.compat32)


def received_at(msg: Message, fallback: datetime) -> datetime:
    try:
        ts = parsedate_to_datetime(str(msg.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return fallback
    return ts if ts.tzinfo else fallback


@dataclass(frozen=True)
class Reported:
    """One recipient a report speaks of."""

    email: str
    action: str
    """``failed`` | ``delayed`` | ``delivered`` | ``relayed`` | ``expanded`` (RFC 3464)."""
    status: str | None
    """The enhanced status code, ``5.1.1``; None when the block has none."""
    diagnostic: str | None = None

    @property
    def permanent(self) -> bool:
        return self.action == "failed" and (self.status or "").startswith("5")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"email": self.email, "action": self.action, "status": self.status}
        if self.diagnostic:
            out["diagnostic"] = self.diagnostic
        return out


@dataclass(frozen=True)
class Report:
    kind: str
    """``delivery-status`` (a DSN) or ``feedback-report`` (a complaint)."""
    recipients: list[Reported]
    original_id: str | None
    """The Message-ID of the message reported on, as quoted (``<…>``); None when not quoted."""


def _addr(field: Any) -> str | None:
    """``rfc822; user@host`` → ``user@host`` (address types other than rfc822 are skipped)."""
    if not field:
        return None
    kind, _, value = str(field).partition(";")
    if not value:
        value, kind = kind, "rfc822"
    if kind.strip().lower() != "rfc822":
        return None
    return normalize_email(value.strip().strip("<>"))


def _blocks(text: str) -> list[Message]:
    """Header blocks separated by blank lines (an MTA that sent the fields unparsed)."""
    out: list[Message] = []
    chunk: list[str] = []
    for line in text.splitlines():
        if line.strip():
            chunk.append(line)
        elif chunk:
            out.append(email.message_from_string("\n".join(chunk), policy=policy.compat32))
            chunk = []
        if len(out) > MAX_REPORTED:
            break
    if chunk:
        out.append(email.message_from_string("\n".join(chunk), policy=policy.compat32))
    return out


def _report_parts(msg: Message) -> tuple[str, list[Message], Message | None] | None:
    """(report type, field blocks, the quoted original's headers) of a multipart/report."""
    if msg.get_content_type() != "multipart/report":
        return None
    kind = str(msg.get_param("report-type") or "").lower()
    if kind not in ("delivery-status", "feedback-report"):
        return None
    payload = msg.get_payload()
    if not isinstance(payload, list):
        return None
    blocks: list[Message] = []
    original: Message | None = None
    for part in payload[:10]:  # a report has three parts; the rest is not the report's
        if not isinstance(part, Message):
            continue
        ctype = part.get_content_type()
        inner = part.get_payload()
        if ctype in ("message/delivery-status", "message/feedback-report"):
            if isinstance(inner, list):
                blocks = [p for p in inner[: MAX_REPORTED + 1] if isinstance(p, Message)]
            elif isinstance(inner, str):
                blocks = _blocks(inner)
        elif ctype in ("message/rfc822", "message/global") and isinstance(inner, list) and inner:
            original = inner[0] if isinstance(inner[0], Message) else None
        elif ctype in ("text/rfc822-headers", "message/global-headers") and isinstance(inner, str):
            original = email.message_from_string(inner[:200_000], policy=policy.compat32)
    return kind, blocks, original


def _original_id(original: Message | None) -> str | None:
    if original is None:
        return None
    m = _ANGLE_ID.search(str(original.get("Message-ID", "")))
    return m.group(0) if m else None


def delivery_report(msg: Message) -> Report | None:
    """What a DSN or ARF report says; None for any other message."""
    found = _report_parts(msg)
    if found is None:
        return None
    kind, blocks, original = found
    recipients: list[Reported] = []
    seen: set[str] = set()
    if kind == "delivery-status":
        # The first block is about the message (Reporting-MTA), the rest one per recipient.
        for block in blocks[1:] if len(blocks) > 1 else blocks:
            rcpt = _addr(block.get("Final-Recipient")) or _addr(block.get("Original-Recipient"))
            if rcpt is None or rcpt in seen:
                continue
            seen.add(rcpt)
            status = _STATUS.match(str(block.get("Status", "")))
            diag = " ".join(str(block.get("Diagnostic-Code", "")).split())[:300] or None
            recipients.append(
                Reported(
                    email=rcpt,
                    action=str(block.get("Action", "")).strip().lower()[:20],
                    status=".".join(status.groups()) if status else None,
                    diagnostic=diag,
                )
            )
            if len(recipients) >= MAX_REPORTED:
                break
    else:
        fields = blocks[0] if blocks else Message()
        rcpt = _addr(fields.get("Original-Rcpt-To"))
        if rcpt is None and original is not None:
            tos = getaddresses([str(original.get("To", ""))])
            rcpt = normalize_email(tos[0][1]) if tos and tos[0][1] else None
        if rcpt is not None:
            feedback = str(fields.get("Feedback-Type", "")).strip().lower()[:20] or "abuse"
            recipients.append(Reported(email=rcpt, action=feedback, status=None))
    return Report(kind=kind, recipients=recipients, original_id=_original_id(original))


def proven(report: Report, ours: Ours) -> list[Reported]:
    """The reported recipients this report proves something about: it quotes a message
    Kizuna sent, and each recipient kept is an address that message went to."""
    if report.original_id is None:
        return []
    sent_to = {normalize_email(a) for a in ours(report.original_id)}
    return [r for r in report.recipients if r.email in sent_to]


@dataclass(frozen=True)
class Verdict:
    events: list[SuppressionEvent]
    """Suppressions the report proves: hard bounces and complaints about mail we sent."""
    unproven: int
    """Recipients it would suppress but cannot prove anything about (forged, not ours)."""


def suppressions(raw: bytes, *, received: datetime, source: str, ours: Ours) -> Verdict:
    """What one incoming message proves: hard-bounced or complaining recipients of a
    message we sent to them. Any other message proves nothing (an empty verdict)."""
    msg = parse(raw)
    report = delivery_report(msg)
    if report is None:
        return Verdict([], 0)
    bounce = report.kind == "delivery-status"
    acting = [r for r in report.recipients if r.permanent or not bounce]
    if not acting:
        return Verdict([], 0)
    kept = [r for r in proven(report, ours) if r in acting]
    at = received_at(msg, received)
    reason: Literal["bounce", "complaint"] = "bounce" if bounce else "complaint"
    events = [SuppressionEvent(email=r.email, reason=reason, source=source, at=at) for r in kept]
    return Verdict(events, len(acting) - len(kept))
