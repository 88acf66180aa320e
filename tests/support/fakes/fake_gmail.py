"""A stateful Gmail mailbox behind googleapiclient's transport seam (an ``httplib2.Http``).

It answers the calls the connector makes — ``getProfile``, ``messages.list`` (paged),
``messages.get`` (raw / metadata), ``history.list`` (paged, 404 below the oldest kept history
id) — in Gmail's JSON shapes, from a mailbox the test changes (add, trash, delete, forget
history). Used by the conformance suite, where scripted sequences cannot follow state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import httplib2

from tests.support.fakes.google_fakes import NOT_FOUND, gmail_metadata, gmail_raw, rfc822


@dataclass
class _Msg:
    raw: bytes
    labels: list[str]
    history_id: int


@dataclass
class FakeGmail:
    address: str = "hanako@ourco.co.jp"
    messages: dict[str, _Msg] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    history_id: int = 1000
    oldest_history: int = 0
    seq: int = 0
    requests: list[str] = field(default_factory=list)

    # -- what a test does to the mailbox -------------------------------------------------
    def _record(self, kind: str, mid: str, labels: list[str] | None = None) -> None:
        self.history_id += 1
        ref: dict[str, Any] = {"id": mid, "threadId": f"t{mid}"}
        rec: dict[str, Any] = {"id": str(self.history_id), "messages": [ref]}
        if kind == "labelsAdded":
            rec[kind] = [{"message": {**ref, "labelIds": labels}, "labelIds": labels}]
        else:
            rec[kind] = [{"message": ref}]
        self.history.append(rec)

    def add(self, subject: str = "商談") -> str:
        self.seq += 1
        mid = f"18c{self.seq:05x}"
        raw = rfc822(f"<{mid}.{self.seq}@customer.co.jp>", subject=f"{subject} {self.seq}")
        self.messages[mid] = _Msg(raw, ["INBOX"], self.history_id + 1)
        self._record("messagesAdded", mid)
        return mid

    def trash(self, mid: str) -> None:
        self.messages[mid].labels = ["TRASH"]
        self._record("labelsAdded", mid, ["TRASH"])

    def delete(self, mid: str) -> None:
        del self.messages[mid]
        self._record("messagesDeleted", mid)

    def forget_history(self) -> None:
        """Gmail keeps history for about a week: every stored start id is now too old."""
        self.oldest_history = self.history_id + 1

    def visible(self) -> list[str]:
        return [m for m, v in self.messages.items() if "TRASH" not in v.labels]

    # -- the transport -------------------------------------------------------------------
    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        self.requests.append(uri)
        url = urlparse(uri)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path.removeprefix("/gmail/v1/users/me")
        if path == "/profile":
            return self._ok({"emailAddress": self.address, "historyId": str(self.history_id)})
        if path == "/messages":
            ids = sorted(self.visible())
            start = int(q.get("pageToken", "0"))
            size = int(q.get("maxResults", "100"))
            chunk = ids[start : start + size]
            body: dict[str, Any] = {"resultSizeEstimate": len(ids)}
            if chunk:
                body["messages"] = [{"id": m, "threadId": f"t{m}"} for m in chunk]
            if start + size < len(ids):
                body["nextPageToken"] = str(start + size)
            return self._ok(body)
        if path.startswith("/messages/"):
            mid = path.rsplit("/", 1)[1]
            msg = self.messages.get(mid)
            if msg is None:
                return self._reply(NOT_FOUND)
            if q.get("format") == "metadata":
                return self._ok(gmail_metadata(mid, msg.raw, msg.labels))
            return self._ok(gmail_raw(mid, msg.raw, msg.labels, str(msg.history_id)))
        if path == "/history":
            since = int(q["startHistoryId"])
            if since < self.oldest_history:
                return self._reply(NOT_FOUND)
            recs = [r for r in self.history if int(r["id"]) > since]
            start = int(q.get("pageToken", "0"))
            size = 2
            body = {"historyId": str(self.history_id)}
            if recs[start : start + size]:
                body["history"] = recs[start : start + size]
            if start + size < len(recs):
                body["nextPageToken"] = str(start + size)
            return self._ok(body)
        raise AssertionError(f"unexpected Gmail call {method} {uri}")

    @staticmethod
    def _ok(body: dict[str, Any]) -> Any:
        return httplib2.Response({"status": "200"}), json.dumps(body).encode()

    @staticmethod
    def _reply(resp: tuple[dict[str, str], str]) -> Any:
        return httplib2.Response(resp[0]), resp[1].encode()
