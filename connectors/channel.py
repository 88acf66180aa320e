"""The contract every outbound channel keeps, so campaigns and reminders never care which.

A channel sends one prepared message and, where it can, answers "did a message with this
Message-ID already go out?" — the question crash recovery asks before resending. ``True`` and
``False`` are definite answers; ``None`` means the channel cannot tell (plain SMTP without a
Sent folder to look in).

Errors: ``TransientError`` (try again later; the ledger row stays pending) or ``BadRecord``
(this recipient cannot be sent to, e.g. a 5xx on RCPT TO; the row is marked failed).

Implemented: ``outbox``, ``smtp_send`` (SMTP, optional IMAP Sent-folder check),
``gmail_send`` (Gmail API; searched by ``rfc822msgid:``), ``graph_send`` (Microsoft Graph
``sendMail``; Sent Items by ``internetMessageId``) and ``slack_send`` (reminders to a webhook;
``was_sent`` is always None). A CRM channel (Salesforce campaign members, HubSpot lists, a CRM
task) would use ``message_id`` as its external id so ``was_sent`` becomes a lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Outgoing:
    message_id: str
    to_address: str
    data: bytes
    """The complete RFC 5322 message (for mail channels)."""
    person_id: int | None = None
    sender: str | None = None
    """The envelope sender (MAIL FROM); the From header's address when None."""


class Channel(Protocol):
    name: str

    def send(self, item: Outgoing) -> None: ...

    def was_sent(self, message_id: str) -> bool | None: ...

    def close(self) -> None: ...
