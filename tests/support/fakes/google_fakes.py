"""Scripted Google responses in the APIs' real shapes, for googleapiclient's own test seam.

``Script`` is ``googleapiclient.http.HttpMockSequence`` that also records every request URI,
so tests can assert what was asked (``startHistoryId``, ``syncToken``, no ``timeMin``...).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

from googleapiclient.http import HttpMockSequence

from connectors.google_api import build_service


class Script(HttpMockSequence):  # type: ignore[misc]
    def __init__(self, responses: list[tuple[dict[str, str], str]]) -> None:
        super().__init__(responses)
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        self.requests.append((method, uri))
        self.bodies.append(body)
        self.headers.append(dict(headers or {}))
        return super().request(uri, method, body, headers, *args, **kwargs)

    def params(self, i: int) -> dict[str, str]:
        q = parse_qs(urlparse(self.requests[i][1]).query)
        return {k: v[0] for k, v in q.items()}

    def paths(self) -> list[str]:
        return [urlparse(u).path for _, u in self.requests]

    @property
    def remaining(self) -> int:
        return len(self._iterable)


def ok(body: dict[str, Any]) -> tuple[dict[str, str], str]:
    return ({"status": "200", "content-type": "application/json"}, json.dumps(body))


def error(
    status: int,
    reason: str,
    message: str,
    *,
    retry_after: str | None = None,
    domain: str = "global",
    google_status: str = "",
) -> tuple[dict[str, str], str]:
    """Google's classic JSON error body (``error.errors[].reason``)."""
    headers = {"status": str(status), "content-type": "application/json; charset=UTF-8"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    err: dict[str, Any] = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
    }
    if google_status:
        err["status"] = google_status
    return headers, json.dumps({"error": err})


def rpc_error(
    status: int, google_status: str, reason: str, message: str
) -> tuple[dict[str, str], str]:
    """The newer shape (People API): ``error.details[]`` with a ``google.rpc.ErrorInfo``."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": google_status,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": reason,
                    "domain": "people.googleapis.com",
                }
            ],
        }
    }
    return {"status": str(status), "content-type": "application/json"}, json.dumps(body)


NOT_FOUND = error(404, "notFound", "Requested entity was not found.", google_status="NOT_FOUND")
RATE_429 = error(
    429,
    "rateLimitExceeded",
    "Too many concurrent requests for user",
    google_status="RESOURCE_EXHAUSTED",
    retry_after="3",
)
RATE_403 = error(403, "userRateLimitExceeded", "User Rate Limit Exceeded", domain="usageLimits")
FULL_SYNC_410 = error(
    410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required."
)


def service(api: str, version: str, script: Script, credentials: Any = None) -> Any:
    return build_service(api, version, http=script, credentials=credentials)


def rfc822(
    message_id: str,
    *,
    sender: str = "Tanaka Taro <taro@customer.co.jp>",
    to: str = "Sato Hanako <hanako@ourco.co.jp>",
    subject: str = "お見積りの件",
    date: str = "Tue, 03 Mar 2026 10:15:00 +0900",
    body: str = "先日はありがとうございました。",
) -> bytes:
    text = (
        f"Message-ID: {message_id}\r\n"
        f"From: {sender}\r\n"
        f"To: {to}\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {date}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="UTF-8"\r\n'
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{body}\r\n"
    )
    return text.encode("utf-8")


def gmail_raw(
    mid: str, raw: bytes, labels: list[str] | None = None, history_id: str = "500"
) -> dict[str, Any]:
    """A ``users.messages.get(format=raw)`` response."""
    return {
        "id": mid,
        "threadId": f"t{mid}",
        "labelIds": labels if labels is not None else ["INBOX", "CATEGORY_PERSONAL"],
        "snippet": "先日はありがとうございました。",
        "sizeEstimate": len(raw) + 200,
        "historyId": history_id,
        "internalDate": "1772500500000",
        "raw": base64.urlsafe_b64encode(raw).decode("ascii"),
    }


def gmail_metadata(mid: str, raw: bytes, labels: list[str] | None = None) -> dict[str, Any]:
    """A ``users.messages.get(format=metadata)`` response: headers, no body."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    headers = [
        {"name": line.split(":", 1)[0], "value": line.split(":", 1)[1].strip()}
        for line in head.split("\r\n")
    ]
    return {
        "id": mid,
        "threadId": f"t{mid}",
        "labelIds": labels if labels is not None else ["INBOX"],
        "snippet": "先日はありがとうございました。",
        "sizeEstimate": len(raw) + 200,
        "historyId": "500",
        "internalDate": "1772500500000",
        "payload": {
            "partId": "",
            "mimeType": "text/plain",
            "filename": "",
            "headers": headers,
            "body": {"size": 40},
        },
    }
