"""kintone read side over an injected ``httpx.Client`` (base URL ``https://<sub>.cybozu.com``).

Any app, as configured; field codes may be Japanese (``更新日時``, ``会社名``). Auth is an API
token in ``X-Cybozu-API-Token`` (set on the client by the flow).

A pass reads ``<updated field> >= "hw" and $id > last order by $id asc limit 500``: the ``$id``
seek replaces ``offset`` (capped at 10,000) and makes every page a resumable checkpoint. A pass
is ordered by ``$id``, not by update time, so a record edited while the pass runs may sort
behind our position with an update time older than records we read later; the next pass
therefore starts from the time this pass *began* (minus ``lookback``), not from the newest
time seen. The boundary is closed and re-read rows are absorbed as unchanged.

The cursor API is the alternative (``mode="cursor"``): one server cursor per pass, 500
records per GET; it expires after 10 minutes idle, and an expired cursor is replaced by a new
one that seeks past the last committed ``$id``. At most 10 cursors exist per domain, so ours
is deleted when a pass stops early.

kintone has no deleted-records API: after a pass, a sweep lists every live ``$id`` (fields
``$id`` only, seeking) and the engine retires ids it no longer sees (``snapshot_end``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from connectors.crm.http import HttpFailure, request
from connectors.page import Cursor, Page
from connectors.throttle import RetryPolicy
from kizuna.errors import AuthError, FatalError, KizunaError, TransientError

PAGE = 500
OFFSET_CAP = 10_000


class KintoneCursor(Cursor):
    """``hw``: closed lower bound on the update time; ``last_id``/``pass_started``: a pass
    in progress (resumed at ``$id > last_id``)."""

    hw: str | None = None
    last_id: int | None = None
    pass_started: str | None = None
    passes: int = 0
    """Passes begun so far: orders cursors even when two passes start in the same second."""


@dataclass(frozen=True)
class AppSpec:
    app: int
    updated_field: str = "更新日時"
    fields: Sequence[str] = ()
    """Field codes to read (empty: all the token may see)."""
    where: str | None = None
    guest_space: int | None = None
    mode: Literal["seek", "cursor"] = "seek"
    lookback: timedelta = timedelta(minutes=5)
    sweep_deletes: bool = True
    page_size: int = PAGE

    def path(self, resource: str) -> str:
        if self.guest_space is not None:
            return f"/k/guest/{self.guest_space}/v1/{resource}"
        return f"/k/v1/{resource}"


def error_code(resp: httpx.Response) -> tuple[str, str]:
    """kintone errors are ``{"code": "CB_VA01", "id": "…", "message": "…", "errors": …}``."""
    try:
        body = resp.json()
    except ValueError:
        return "", resp.text[:200]
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("code") or ""), str(body.get("message") or "")[:300]


def explain(resp: httpx.Response, what: str) -> KizunaError | None:
    code, msg = error_code(resp)
    if resp.status_code == 401 or code in ("CB_WA01", "GAIA_IA02", "CB_AU01"):
        return AuthError(f"{what}: kintone refused the API token ({code}); issue a new one")
    if resp.status_code == 403 or code == "CB_NO02":
        return AuthError(
            f"{what}: the API token lacks a permission ({code}: {msg}); "
            "grant it in the app's API token settings"
        )
    if resp.status_code == 429:
        return TransientError(f"{what}: kintone is throttling ({code or 429})")
    if resp.status_code == 400 and code:
        return FatalError(f"{what}: {code} {msg}")
    return None


def value(record: Mapping[str, Any], code: str) -> Any:
    """A field's value from a kintone record (``{code: {"type": …, "value": …}}``)."""
    f = record.get(code)
    return f.get("value") if isinstance(f, Mapping) else None


def record_id(record: Mapping[str, Any]) -> int:
    return int(str(value(record, "$id")))


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def kintone_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kintone:
    """The calls one app's streams make."""

    def __init__(self, client: httpx.Client, policy: RetryPolicy | None = None) -> None:
        self.client = client
        self.policy = policy or RetryPolicy()

    def call(
        self, method: str, path: str, what: str, accept: Sequence[int] = (), **kw: Any
    ) -> httpx.Response:
        return request(
            self.client,
            method,
            path,
            what=what,
            policy=self.policy,
            explain=explain,
            accept=accept,
            **kw,
        )

    def records(
        self, spec: AppSpec, query: str, fields: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        # POST + X-HTTP-Method-Override: GET (documented for long URIs) keeps long queries
        # and Japanese field codes out of the URL.
        body: dict[str, Any] = {"app": spec.app, "query": query, "totalCount": False}
        if fields:
            body["fields"] = list(fields)
        resp = self.call(
            "POST",
            spec.path("records.json"),
            f"kintone app {spec.app} records",
            content=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json", "X-HTTP-Method-Override": "GET"},
        )
        out: list[dict[str, Any]] = resp.json().get("records", [])
        return out

    def create_cursor(self, spec: AppSpec, query: str, fields: Sequence[str]) -> str:
        body: dict[str, Any] = {"app": spec.app, "query": query, "size": spec.page_size}
        if fields:
            body["fields"] = list(fields)
        resp = self.call(
            "POST", spec.path("records/cursor.json"), f"kintone app {spec.app} cursor", json=body
        )
        return str(resp.json()["id"])

    def cursor_page(self, spec: AppSpec, cursor_id: str) -> httpx.Response:
        return self.call(
            "GET",
            spec.path("records/cursor.json"),
            f"kintone app {spec.app} cursor page",
            accept=(400, 404),
            params={"id": cursor_id},
        )

    def delete_cursor(self, spec: AppSpec, cursor_id: str) -> None:
        # Best effort: an undeleted cursor expires by itself after 10 minutes.
        with contextlib.suppress(KizunaError, HttpFailure):
            self.call(
                "DELETE",
                spec.path("records/cursor.json"),
                f"kintone app {spec.app} cursor delete",
                accept=(400, 404),
                json={"id": cursor_id},
            )


def _query(spec: AppSpec, hw: str | None, after: int | None, limit: int | None) -> str:
    conds = []
    if hw:
        conds.append(f"{spec.updated_field} >= {quote(hw)}")
    if after is not None:
        conds.append(f"$id > {after}")
    if spec.where:
        conds.append(f"({spec.where})")
    q = " and ".join(conds)
    q = f"{q} order by $id asc" if q else "order by $id asc"
    return f"{q} limit {limit}" if limit else q


Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def read_app(
    kt: Kintone,
    spec: AppSpec,
    cursor: KintoneCursor | None,
    *,
    page_size: int | None = None,
    clock: Clock | None = None,
) -> Iterator[Page[KintoneCursor]]:
    """Pages of records updated since the cursor, then (optionally) the live-id sweep."""
    page_size = page_size or spec.page_size
    full = cursor is None
    cur = cursor or KintoneCursor()
    if cur.pass_started is None:
        started = kintone_time((clock or _now)() - spec.lookback)
        if cur.hw and started < cur.hw:
            started = cur.hw  # never move the mark backwards (a clock step, a short lookback)
        cur = cur.model_copy(
            update={"pass_started": started, "last_id": None, "passes": cur.passes + 1}
        )
    pages = _seek(kt, spec, cur, page_size) if spec.mode == "seek" else _cursor(kt, spec, cur)
    for page in pages:
        yield page
        cur = page.cursor
    done = KintoneCursor(hw=cur.pass_started, passes=cur.passes)
    if not spec.sweep_deletes:
        yield Page(records=[], cursor=done, snapshot_end=full)
        return
    yield from _sweep(kt, spec, done, page_size)


def _seek(
    kt: Kintone, spec: AppSpec, cur: KintoneCursor, size: int
) -> Iterator[Page[KintoneCursor]]:
    while True:
        rows = kt.records(spec, _query(spec, cur.hw, cur.last_id, size), spec.fields)
        if rows:
            cur = cur.model_copy(update={"last_id": record_id(rows[-1])})
            yield Page(records=rows, cursor=cur)
        if len(rows) < size:
            return


def _cursor(kt: Kintone, spec: AppSpec, cur: KintoneCursor) -> Iterator[Page[KintoneCursor]]:
    cid: str | None = kt.create_cursor(spec, _query(spec, cur.hw, cur.last_id, None), spec.fields)
    try:
        while cid is not None:
            resp = kt.cursor_page(spec, cid)
            if resp.status_code in (400, 404):
                # Expired (10 minutes idle) or gone: a new cursor from the last committed id.
                cid = kt.create_cursor(spec, _query(spec, cur.hw, cur.last_id, None), spec.fields)
                continue
            body = resp.json()
            rows = body.get("records", [])
            if rows:
                cur = cur.model_copy(update={"last_id": record_id(rows[-1])})
                yield Page(records=rows, cursor=cur)
            if not body.get("next"):
                cid = None  # the server deletes a cursor that has been read to the end
    finally:
        if cid is not None:
            kt.delete_cursor(spec, cid)


def _sweep(
    kt: Kintone, spec: AppSpec, done: KintoneCursor, size: int
) -> Iterator[Page[KintoneCursor]]:
    last: int | None = None
    while True:
        q = _query(spec, None, last, size)  # same `where`, no time bound: every live id
        rows = kt.records(spec, q, ["$id"])
        ids = [str(record_id(r)) for r in rows]
        end = len(rows) < size
        yield Page(records=[], cursor=done, seen=ids, snapshot_end=end)
        if end:
            return
        last = int(ids[-1])
