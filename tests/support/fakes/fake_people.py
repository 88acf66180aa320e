"""A stateful Google contacts list behind googleapiclient's transport seam.

``people.connections.list`` as People v1 runs it: a full listing with ``requestSyncToken``
whose last page carries ``nextSyncToken``; with ``syncToken`` only the changes since,
deletions as a person whose ``metadata.deleted`` is true; an expired token answers 400
``FAILED_PRECONDITION`` with an ``EXPIRED_SYNC_TOKEN`` ErrorInfo.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import httplib2

from tests.support.fakes.google_fakes import rpc_error


@dataclass
class FakePeople:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)
    version: int = 0
    oldest: int = 0
    seq: int = 0

    def add(self) -> str:
        self.seq += 1
        self.version += 1
        rn = f"people/c{self.seq:06d}"
        self.items[rn] = {
            "resourceName": rn,
            "etag": f"%E{self.version}",
            "metadata": {"sources": [{"type": "CONTACT", "id": str(self.seq)}]},
            "names": [{"displayName": f"顧客 {self.seq}", "metadata": {"primary": True}}],
            "emailAddresses": [{"value": f"c{self.seq}@customer{self.seq}.co.jp"}],
        }
        self.log.append((self.version, rn))
        return rn

    def delete(self, rn: str) -> None:
        del self.items[rn]
        self.version += 1
        self.log.append((self.version, rn))

    def expire(self) -> None:
        self.oldest = self.version + 1

    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        q = {k: v[0] for k, v in parse_qs(urlparse(uri).query).items()}
        size = int(q.get("pageSize", "100"))
        if "pageToken" in q:
            since, upto, offset = (int(x) for x in q["pageToken"].split("."))
        elif "syncToken" in q:
            since, upto, offset = int(q["syncToken"]), self.version, 0
        else:
            since, upto, offset = -1, self.version, 0
        if 0 <= since < self.oldest:
            resp = rpc_error(
                400, "FAILED_PRECONDITION", "EXPIRED_SYNC_TOKEN", "Sync token expired."
            )
            return httplib2.Response(resp[0]), resp[1].encode()
        if since < 0:
            changes = [self.items[r] for r in sorted(self.items)]
        else:
            touched = sorted({r for v, r in self.log if since < v <= upto})
            changes = [
                self.items.get(r) or {"resourceName": r, "metadata": {"deleted": True}}
                for r in touched
            ]
        body: dict[str, Any] = {"connections": changes[offset : offset + size]}
        if offset + size < len(changes):
            body["nextPageToken"] = f"{since}.{upto}.{offset + size}"
        else:
            body["nextSyncToken"] = str(upto)
        body["totalItems"] = len(self.items)
        return httplib2.Response({"status": "200"}), json.dumps(body).encode()
