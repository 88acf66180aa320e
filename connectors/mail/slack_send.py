"""Reminders posted to a Slack incoming webhook (``httpx`` client injected).

A webhook is one channel chosen when it was created, so the text names the owner instead of
addressing them. The webhook URL is a secret (anyone holding it can post): it never appears
in an error or log line, only the channel's configured name does. Slack cannot be asked
whether a message was posted, so ``was_sent`` answers ``None`` and a send left in doubt by a
crash follows the ledger's in-doubt policy, exactly like SMTP without a Sent folder.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import httpx
from pydantic import SecretStr

from connectors.channel import Outgoing
from connectors.throttle import parse_retry_after
from kizuna.errors import FatalError, TransientError

MAX_TEXT = 3500
"""Slack truncates long webhook text; keep reminders well under its 4,000-character limit."""


def slack_text(item: Outgoing) -> str:
    """The reminder as Slack text: the owner, the subject in bold, then the plain-text body."""
    msg = message_from_bytes(item.data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    subject = str(msg.get("Subject", "")).strip()
    part = msg.get_body(preferencelist=("plain",))
    body = part.get_content().strip() if isinstance(part, EmailMessage) else ""
    text = f"{item.to_address}: *{_escape(subject)}*\n{_escape(body)}".strip()
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _escape(text: str) -> str:
    """Slack treats ``<…>`` as links and mentions; a customer's name must never become one."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackChannel:
    def __init__(
        self,
        client: httpx.Client,
        webhook: SecretStr,
        *,
        name: str = "slack",
        owns_client: bool = False,
    ) -> None:
        self.client = client
        self._webhook = webhook
        self.name = name
        self._owns_client = owns_client

    def send(self, item: Outgoing) -> None:
        try:
            resp = self.client.post(
                self._webhook.get_secret_value(), json={"text": slack_text(item)}
            )
        except httpx.HTTPError as exc:
            raise TransientError(
                f"Slack channel {self.name}: webhook unreachable ({type(exc).__name__})"
            ) from None
        status = resp.status_code
        if status < 300:
            return
        # Slack answers webhook errors with a short plain-text reason (invalid_payload,
        # channel_not_found, no_service); it carries no secret, the URL is left out.
        reason = resp.text.strip()[:80]
        if status == 429 or status >= 500:
            raise TransientError(
                f"Slack channel {self.name}: {'throttled' if status == 429 else 'server error'}"
                f" ({status})",
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            )
        raise FatalError(
            f"Slack channel {self.name}: webhook refused the post ({status} {reason}); "
            "check that the webhook still exists and its environment variable is current"
        )

    def was_sent(self, message_id: str) -> bool | None:
        return None

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
