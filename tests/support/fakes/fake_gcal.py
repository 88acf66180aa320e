"""A stateful Google Calendar behind googleapiclient's transport seam (an ``httplib2.Http``).

``events.list`` as Calendar v3 runs it: a full listing (``timeMin``, paged) whose last page
carries ``nextSyncToken``; with ``syncToken`` only the changes since, deletions as
``status: "cancelled"`` stubs; **410** ``fullSyncRequired`` for a token older than
:meth:`FakeCalendar.expire`; **400** if ``timeMin`` comes with ``syncToken`` (the real API's
rule, so the connector is held to it). Tokens are readable so conformance can order cursors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import httplib2

from tests.support.fakes.google_fakes import FULL_SYNC_410, error


@dataclass
class FakeCalendar:
    account: str = "hanako@ourco.co.jp"
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)
    version: int = 0
    oldest: int = 0
    seq: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)

    def add(self) -> str:
        self.seq += 1
        self.version += 1
        eid = f"evt{self.seq:04d}"
        day = 1 + self.seq % 27
        self.items[eid] = {
            "kind": "calendar#event",
            "etag": f'"{self.version}"',
            "id": eid,
            "status": "confirmed",
            "summary": f"商談 {self.seq}",
            "updated": "2026-03-01T00:00:00.000Z",
            "iCalUID": f"{eid}@google.com",
            "sequence": 0,
            "organizer": {"email": self.account, "self": True},
            "start": {"dateTime": f"2026-04-{day:02d}T10:00:00+09:00", "timeZone": "Asia/Tokyo"},
            "end": {"dateTime": f"2026-04-{day:02d}T11:00:00+09:00", "timeZone": "Asia/Tokyo"},
            "attendees": [
                {"email": self.account, "organizer": True, "responseStatus": "accepted"},
                {"email": f"guest{self.seq}@customer.co.jp", "responseStatus": "needsAction"},
            ],
        }
        self.log.append((self.version, eid))
        return eid

    def delete(self, eid: str) -> None:
        del self.items[eid]
        self.version += 1
        self.log.append((self.version, eid))

    def expire(self) -> None:
        self.oldest = self.version + 1

    def _changes(self, since: int, upto: int) -> list[dict[str, Any]]:
        if since < 0:
            return [self.items[e] for e in sorted(self.items)]
        touched = sorted({e for v, e in self.log if since < v <= upto})
        return [
            self.items.get(e)
            or {"kind": "calendar#event", "etag": '"0"', "id": e, "status": "cancelled"}
            for e in touched
        ]

    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        q = {k: v[0] for k, v in parse_qs(urlparse(uri).query).items()}
        self.requests.append(q)
        if "syncToken" in q and "timeMin" in q:
            return self._reply(error(400, "invalid", "Sync token cannot be combined with timeMin."))
        size = int(q.get("maxResults", "250"))
        if "pageToken" in q:
            since, upto, offset = (int(x) for x in q["pageToken"].split("."))
        elif "syncToken" in q:
            since, upto, offset = int(q["syncToken"]), self.version, 0
        else:
            since, upto, offset = -1, self.version, 0
        if since >= 0 and since < self.oldest:
            return self._reply(FULL_SYNC_410)
        changes = self._changes(since, upto)
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "summary": self.account,
            "timeZone": "Asia/Tokyo",
            "items": changes[offset : offset + size],
        }
        if offset + size < len(changes):
            body["nextPageToken"] = f"{since}.{upto}.{offset + size}"
        else:
            body["nextSyncToken"] = str(upto)
        return httplib2.Response({"status": "200"}), json.dumps(body).encode()

    @staticmethod
    def _reply(resp: tuple[dict[str, str], str]) -> Any:
        return httplib2.Response(resp[0]), resp[1].encode()
