"""Sending through Gmail's ``users.messages.send`` with the raw RFC 5322 message.

The message is the one ``connectors.mail.compose`` built (headers, Message-ID, List-Unsubscribe
and all), base64url-encoded as Gmail's ``raw`` field; Gmail files it in the sender's Sent label
and keeps our Message-ID, so "was it sent?" is a search of the sender's mailbox for
``rfc822msgid:`` — the crash recovery SMTP cannot offer.

A send is tried once: a retry after a timeout or 5xx could deliver twice, so every failure goes
back to the ledger, whose next run asks ``was_sent`` before sending again. Looking up is
idempotent and retried under the policy; if Google cannot be asked, ``was_sent`` raises
``TransientError`` rather than guessing, so the batch is retried instead of resent.

Scopes: ``gmail.send`` to send and ``gmail.readonly`` to search (the metadata scope does not
allow ``q``). Gmail rewrites a From address that is neither the account nor one of its
verified "send mail as" aliases.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from connectors.channel import Outgoing
from connectors.google_api import GMAIL_READONLY, classifier, error_details, execute
from connectors.throttle import RetryPolicy, TokenBucket
from kizuna.errors import BadRecord, KizunaError

GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
SEND_SCOPES = (GMAIL_SEND, GMAIL_READONLY)

ONCE = RetryPolicy(max_retries=0)


class GmailChannel:
    def __init__(
        self,
        service: Any,
        account: str,
        *,
        name: str = "gmail",
        policy: RetryPolicy | None = None,
        budget: TokenBucket | None = None,
        fix: str = "",
    ) -> None:
        self.messages = service.users().messages()
        self.account = account
        self.name = name
        self.policy = policy or RetryPolicy()
        self.budget = budget
        self.classify = classifier(account, fix=fix)

    def send(self, item: Outgoing) -> None:
        raw = base64.urlsafe_b64encode(item.data).decode("ascii")
        request = self.messages.send(userId="me", body={"raw": raw})
        execute(  # messages.send costs 100 quota units
            request,
            classify=self._send_classifier(item.to_address),
            policy=ONCE,
            budget=self.budget,
            cost=100,
            what=f"Gmail send as {self.account}",
        )

    def _send_classifier(self, to_address: str) -> Callable[[BaseException], KizunaError | None]:
        """A 400 on send is this message's problem (a bad To address): fail the row, go on."""
        from googleapiclient.errors import HttpError

        def classify(exc: BaseException) -> KizunaError | None:
            if isinstance(exc, HttpError) and int(exc.resp.status) == 400:
                _, message = error_details(exc.content)
                return BadRecord(f"Gmail refused the message to {to_address}: {message}")
            return self.classify(exc)

        return classify

    def was_sent(self, message_id: str) -> bool | None:
        request = self.messages.list(
            userId="me",
            q=f"rfc822msgid:{message_id.strip().strip('<>')}",
            maxResults=1,
            includeSpamTrash=True,
        )
        found = execute(
            request,
            classify=self.classify,
            policy=self.policy,
            budget=self.budget,
            cost=5,
            what=f"Gmail search in {self.account}",
        )
        return bool(found.get("messages"))

    def close(self) -> None:
        return None
