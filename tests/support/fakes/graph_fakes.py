"""Microsoft Graph and Entra ID responses in their documented shapes, served through respx.

``GraphScript`` answers Graph requests from a scripted list (in order) and records each
request, so tests see exactly which links were followed and with which headers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import respx

TENANT = "7f3c2b1a-0000-4000-8000-00000000feed"
CLIENT = "0b9e5a44-1111-4111-8111-000000000abc"
SECRET = "Zx8Q~client-SECRET-value~do-not-log"
ACCESS = "eyJ0eXAiOiJKV1Qi.ACCESS-TOKEN-SECRET.sig"
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
BASE = "https://graph.microsoft.com/v1.0"
MAILBOX = "hanako@ourco.co.jp"
MBX = "hanako%40ourco.co.jp"


def token_ok(access: str = ACCESS) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": access,
        },
    )


def token_invalid_client() -> httpx.Response:
    return httpx.Response(
        401,
        json={
            "error": "invalid_client",
            "error_description": (
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
                "in the request is the client secret value, not the client secret ID. "
                "Trace ID: 0c1e Correlation ID: 77aa Timestamp: 2026-03-03 01:00:00Z"
            ),
            "error_codes": [7000215],
            "timestamp": "2026-03-03 01:00:00Z",
            "trace_id": "0c1e",
            "correlation_id": "77aa",
            "error_uri": "https://login.microsoftonline.com/error?code=7000215",
        },
    )


def graph_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        headers=headers or {},
        json={
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": "2026-03-03T01:00:00",
                    "request-id": "5d0b-req",
                    "client-request-id": "5d0b-req",
                },
            }
        },
    )


def page(
    value: list[dict[str, Any]],
    *,
    next_link: str | None = None,
    delta_link: str | None = None,
    entity: str = "message",
) -> httpx.Response:
    body: dict[str, Any] = {"@odata.context": f"{BASE}/$metadata#Collection({entity})"}
    if next_link:
        body["@odata.nextLink"] = next_link
    if delta_link:
        body["@odata.deltaLink"] = delta_link
    body["value"] = value
    return httpx.Response(200, json=body)


def removed(item_id: str, entity: str = "message") -> dict[str, Any]:
    return {
        "@odata.type": f"#microsoft.graph.{entity}",
        "id": item_id,
        "@removed": {"reason": "deleted"},
    }


def address(addr: str, name: str = "") -> dict[str, Any]:
    return {"emailAddress": {"name": name or addr, "address": addr}}


def message(
    gid: str,
    message_id: str,
    *,
    sender: tuple[str, str] = ("taro@customer.co.jp", "Tanaka Taro"),
    to: list[tuple[str, str]] | None = None,
    subject: str = "お見積りの件",
    sent: str = "2026-03-03T01:15:00Z",
    preview: str = "先日はありがとうございました。",
    headers: list[dict[str, str]] | None = None,
    draft: bool = False,
) -> dict[str, Any]:
    """A message as ``messages/delta`` returns it with our ``$select``."""
    recipients = to if to is not None else [("hanako@ourco.co.jp", "佐藤 花子")]
    msg: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.message",
        "@odata.etag": 'W/"CQAAABYAAAB"',
        "id": gid,
        "internetMessageId": message_id,
        "subject": subject,
        "bodyPreview": preview,
        "from": address(*sender),
        "sender": address(*sender),
        "toRecipients": [address(a, n) for a, n in recipients],
        "ccRecipients": [],
        "bccRecipients": [],
        "replyTo": [],
        "sentDateTime": sent,
        "receivedDateTime": sent.replace(":00Z", ":04Z"),
        "conversationId": "AAQkAGI2TG93AAA=",
        "parentFolderId": "AAMkAGI2AAEMAAA=",
        "isDraft": draft,
        "categories": [],
        "lastModifiedDateTime": "2026-03-03T01:16:00Z",
        "hasAttachments": False,
    }
    if headers is not None:
        msg["internetMessageHeaders"] = headers
    return msg


class GraphScript:
    """Answers Graph requests in order from ``responses``; records each request."""

    def __init__(self, responses: list[httpx.Response]) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.responses:
            raise AssertionError(f"unexpected Graph request {request.url}")
        return self.responses.pop(0)


@contextmanager
def graph_mock(
    script: GraphScript, token: list[httpx.Response] | None = None
) -> Iterator[respx.Router]:
    tokens = token if token is not None else [token_ok()]
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(side_effect=tokens)
        router.route(host="graph.microsoft.com").mock(side_effect=script)
        yield router


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
