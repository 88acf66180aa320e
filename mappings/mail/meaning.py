"""What a message is, beyond "an email": a bounce, an auto-reply, an invitation, a forward.

The kind decides whether a message is contact with a customer: bounces and auto-replies are
kept (searchable, exported) but carry ``timeline=False``, so segments, reminders and the 日報
never count a vacation notice or a mailer daemon as the customer writing back. Pure: parsed
headers in, a kind out; the rules are the headers RFC 3834 and RFC 3464 define plus the few
that common mailers (Exchange, Gmail, Japanese groupware) write instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any

from mappings.mail.bounce import delivery_report
from mappings.mail.mime import normalize_message_id
from warehouse.records import ActivityKind

_AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond")
# Subjects only mailers write (Outlook's "Automatic reply:", Japanese groupware's 自動応答):
# enough on their own, since a person does not start a subject that way.
_AUTO_REPLY_SUBJECTS = (
    "automatic reply:",
    "autoreply:",
    "auto-reply:",
    "out of office:",
    "自動応答",
    "自動返信",
    "不在通知",
)
_FORWARD_SUBJECTS = ("fwd:", "fw:", "転送:", "転送：", "tr:", "wg:")
_DAEMONS = frozenset({"mailer-daemon", "postmaster"})


def is_forward_subject(subject: str) -> bool:
    """``Fwd:``, ``FW:``, ``転送:`` and the other prefixes mail programs put on a forward."""
    return subject.strip().lower().startswith(_FORWARD_SUBJECTS)


@dataclass(frozen=True)
class Meaning:
    kind: ActivityKind
    timeline: bool


def classify(
    header: Callable[[str], str | None],
    *,
    content_type: str,
    report_type: str | None,
    subject: str,
    sender: str | None,
    has_calendar: bool,
    has_message_part: bool,
) -> Meaning:
    """The kind of one message from its headers and the shape of its body.

    ``header(name)`` gives a header's first raw value (lower-case name) or None.
    """
    sender_local = (sender or "").split("@", 1)[0].lower()
    auto = (header("auto-submitted") or "").strip().lower()
    if (content_type == "multipart/report" and report_type == "delivery-status") or (
        sender_local in _DAEMONS and not has_calendar
    ):
        return Meaning("bounce", False)
    low_subject = subject.strip().lower()
    if (
        auto.startswith("auto-replied")
        or (header("precedence") or "").strip().lower() == "auto_reply"
        or any((header(h) or "").strip() for h in _AUTO_REPLY_HEADERS)
        or low_subject.startswith(_AUTO_REPLY_SUBJECTS)
    ):
        return Meaning("auto_reply", False)
    if has_calendar:
        return Meaning("invitation", True)
    if has_message_part and is_forward_subject(subject):
        return Meaning("forward", True)
    return Meaning("email", True)


MAX_BOUNCED_SHOWN = 100
"""Bounced recipients kept on one bounce activity (a report may list thousands)."""


def report_attributes(msg: Message) -> dict[str, Any]:
    """What a bounce says, for its activity: each recipient it reports on (address, action,
    status, diagnostic) and the Message-ID of the message that bounced. Suppression is not
    decided here: that needs the delivery ledger (:mod:`mappings.mail.bounce`)."""
    report = delivery_report(msg)
    if report is None or report.kind != "delivery-status":
        return {}
    out: dict[str, Any] = {
        "bounced": [r.as_dict() for r in report.recipients[:MAX_BOUNCED_SHOWN]],
    }
    if len(report.recipients) > MAX_BOUNCED_SHOWN:
        out["bounced_total"] = len(report.recipients)
    original = normalize_message_id(report.original_id)
    if original:
        out["bounced_message_id"] = original
    return out
