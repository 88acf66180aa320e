"""A stateful Exchange Online mail folder behind respx, answering ``messages/delta``.

Delta rounds as Graph runs them: a first request lists the folder in pages
(``@odata.nextLink`` with a ``$skiptoken``) and ends with an ``@odata.deltaLink``; a round
started from that link returns only what changed since, deletions as ``@removed``. After
:meth:`FakeFolder.expire` every older token answers **410** like an expired sync state.
Tokens here are readable (``since.upto.offset``) so conformance can order cursors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx

from tests.support.fakes.graph_fakes import (
    BASE,
    TOKEN_URL,
    address,
    graph_error,
    message,
    page,
    removed,
    token_ok,
)


def _event(gid: str, seq: int) -> dict[str, Any]:
    """A calendarView event as Graph returns it (times in UTC, as we ask)."""
    day = 1 + seq % 27
    uid = f"040000008200E00074C5B7101A82E00800000000{seq:08X}0000000000000000100000000000"
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": gid,
        "iCalUId": uid,
        "type": "singleInstance",
        "subject": f"商談 {seq}",
        "bodyPreview": "",
        "isAllDay": False,
        "isCancelled": False,
        "lastModifiedDateTime": "2026-03-01T00:00:00Z",
        "start": {"dateTime": f"2026-04-{day:02d}T01:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": f"2026-04-{day:02d}T02:00:00.0000000", "timeZone": "UTC"},
        "organizer": address("jiro@ourco.co.jp", "鈴木 次郎"),
        "attendees": [
            {
                "type": "required",
                "status": {"response": "accepted", "time": "2026-03-01T00:00:00Z"},
                **address(f"guest{seq}@customer.co.jp"),
            }
        ],
    }


@dataclass
class FakeFolder:
    mailbox: str = "jiro@ourco.co.jp"
    folder: str = "inbox"
    page_size: int = 2
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)
    version: int = 0
    oldest: int = 0
    seq: int = 0
    calendar: bool = False
    """Serve ``calendarView/delta`` events instead of mail folder messages."""

    @property
    def url(self) -> str:
        user = f"{BASE}/users/{self.mailbox.replace('@', '%40')}"
        if self.calendar:
            return f"{user}/calendarView/delta"
        return f"{user}/mailFolders/{self.folder}/messages/delta"

    def add(self) -> str:
        self.seq += 1
        gid = f"AAMkAGI2-{self.seq:04d}"
        self.version += 1
        if self.calendar:
            self.items[gid] = _event(gid, self.seq)
        else:
            self.items[gid] = message(gid, f"<g{self.seq}.{self.version}@customer.co.jp>")
        self.log.append((self.version, gid))
        return gid

    def delete(self, gid: str) -> None:
        del self.items[gid]
        self.version += 1
        self.log.append((self.version, gid))

    def expire(self) -> None:
        self.oldest = self.version + 1

    def _changes(self, since: int, upto: int) -> list[dict[str, Any]]:
        if since < 0:
            return [self.items[g] for g in sorted(self.items)]
        touched = sorted({g for v, g in self.log if since < v <= upto})
        return [self.items[g] if g in self.items else removed(g, self.entity) for g in touched]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if "$skiptoken" in params:
            since, upto, offset = (int(x) for x in params["$skiptoken"].split("."))
        elif "$deltatoken" in params:
            since, upto, offset = int(params["$deltatoken"]), self.version, 0
            if since < self.oldest:
                return graph_error(410, "SyncStateNotFound", "The sync state is not found.")
        else:
            since, upto, offset = -1, self.version, 0
        changes = self._changes(since, upto)
        chunk = changes[offset : offset + self.page_size]
        if offset + self.page_size < len(changes):
            nxt = f"{self.url}?$skiptoken={since}.{upto}.{offset + self.page_size}"
            return page(chunk, next_link=nxt, entity=self.entity)
        return page(chunk, delta_link=f"{self.url}?$deltatoken={upto}", entity=self.entity)

    @property
    def entity(self) -> str:
        return "event" if self.calendar else "message"


@contextmanager
def serve(folder: FakeFolder) -> Iterator[respx.Router]:
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(side_effect=lambda _r: token_ok())
        router.route(host="graph.microsoft.com").mock(side_effect=folder)
        yield router
