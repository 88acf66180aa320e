"""Sending through Microsoft Graph ``POST /users/{id}/sendMail`` with the MIME message.

The composed RFC 5322 message goes as base64 text (``Content-Type: text/plain``), so headers
we set — Message-ID, List-Unsubscribe — survive as written. Exchange saves what it sends in
the mailbox's Sent Items, which is where "was it sent?" looks, filtering on
``internetMessageId``. The app needs the ``Mail.Send`` application permission to send and
``Mail.ReadBasic.All`` (or ``Mail.Read``) to look; an application access policy can narrow
both to the sending mailbox.

A send is tried once (a retry after a timeout could deliver twice); a 401 is the exception,
since a refused token means nothing was sent: the token is renewed and the send made once
more. Every other failure goes back to the ledger, whose next run asks ``was_sent`` first.
Sent Items is written a few seconds after ``sendMail`` returns 202, so the answer is only
meaningful on a later run, which is when the ledger asks.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import quote

import httpx

from connectors.channel import Outgoing
from connectors.mail.graph import GraphClient, GraphOptions, GraphStatus, TokenSource
from connectors.throttle import RetryPolicy, call
from kizuna.errors import AuthError, BadRecord, KizunaError

ONCE = RetryPolicy(max_retries=0)


class GraphSendChannel:
    def __init__(
        self,
        client: httpx.Client,
        tokens: TokenSource,
        opts: GraphOptions,
        *,
        name: str = "m365",
        owns_client: bool = False,
    ) -> None:
        self.api = GraphClient(client, tokens, opts)
        self._owns_client = owns_client
        self.name = name
        self.mailbox = opts.mailbox
        self.user_url = f"{opts.base_url.rstrip('/')}/users/{quote(opts.mailbox, safe='')}"

    def send(self, item: Outgoing) -> None:
        api = self.api
        body = base64.b64encode(item.data)

        def once() -> None:
            resp = self._post(body)
            if resp.status_code == 401:
                api.tokens.invalidate()
                resp = self._post(body)
            if resp.status_code >= 400:
                raise GraphStatus(resp)

        call(
            once,
            classify=self._send_classifier(item.to_address),
            policy=ONCE,
            budget=api.bucket,
            what=f"Graph sendMail as {self.mailbox}",
        )

    def _post(self, body: bytes) -> httpx.Response:
        api = self.api
        return api.client.post(
            f"{self.user_url}/sendMail",
            content=body,
            headers={
                "Authorization": f"Bearer {api.tokens.token(api.client)}",
                "Content-Type": "text/plain",
            },
        )

    def _send_classifier(self, to_address: str) -> Callable[[BaseException], KizunaError | None]:
        base = self.api.classify
        fix = self.api.tokens.auth.reauth_hint

        def run(exc: BaseException) -> KizunaError | None:
            if isinstance(exc, GraphStatus) and exc.response.status_code == 400:
                err = _error(exc.response)
                return BadRecord(f"Graph refused the message to {to_address}: {err}")
            if isinstance(exc, GraphStatus) and exc.response.status_code == 403:
                return AuthError(
                    f"Graph for {self.mailbox}: sending denied (403). Grant the app the "
                    f"Mail.Send application permission with admin consent, and check that no "
                    f"application access policy excludes {self.mailbox}. {fix}".strip()
                )
            return base(exc)

        return run

    def was_sent(self, message_id: str) -> bool | None:
        escaped = message_id.replace("'", "''")
        found = self.api.get(
            f"{self.user_url}/mailFolders/sentitems/messages",
            params={"$filter": f"internetMessageId eq '{escaped}'", "$select": "id", "$top": "1"},
        )
        return bool(found.get("value"))

    def close(self) -> None:
        if self._owns_client:
            self.api.client.close()


def _error(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return str(resp.status_code)
    return f"{err.get('code') or resp.status_code}: {str(err.get('message') or '')[:200]}"
