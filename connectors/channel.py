"""The contract every outbound channel keeps, so campaigns and reminders never care which.

A channel sends one prepared message and, where it can, answers "did a message with this
Message-ID already go out?" — the question crash recovery asks before resending. ``True`` and
``False`` are definite answers; ``None`` means the channel cannot tell (plain SMTP without a
Sent folder to look in).

Errors: ``TransientError`` (try again later; the ledger row stays pending) or ``BadRecord``
(this recipient cannot be sent to, e.g. a 5xx on RCPT TO; the row is marked failed).

Channels being built elsewhere (Gmail ``users.messages.send``, Microsoft Graph ``sendMail``,
Salesforce campaign members, HubSpot lists) implement the same two methods; a CRM channel
uses ``message_id`` as its external id so ``was_sent`` becomes a lookup.
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
