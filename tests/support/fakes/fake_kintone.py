"""A stateful kintone behind a respx router: apps, queries, the cursor API, writes, errors.

Shapes follow the kintone REST API: records are ``{code: {"type", "value"}}``; errors are
``{"code": "CB_…"/"GAIA_…", "id": "…", "message": "…"}``; ``offset`` past 10,000 is refused;
cursors (``records/cursor.json``) hand out 500-record pages and can be expired on demand;
writes check ``revision`` and answer 409 ``GAIA_CO02`` when it is stale; a bad request fails
the whole batch (kintone writes are all-or-nothing per request).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import httpx
import respx

BASE = "https://example.cybozu.com"
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def ktime(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error(status: int, code: str, message: str, errors: Any = None) -> httpx.Response:
    body: dict[str, Any] = {"code": code, "id": "1505999166-897850006", "message": message}
    if errors is not None:
        body["errors"] = errors
    return httpx.Response(status, json=body)


@dataclass
class App:
    types: dict[str, str]
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    unique: str | None = None
    """A field whose values must be unique (an upsert key)."""


@dataclass
class FakeKintone:
    apps: dict[int, App] = field(default_factory=dict)
    clock: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    """The server's time: starts at the real now, because the connector's pass start is real."""
    calls: list[str] = field(default_factory=list)
    cursors: dict[str, dict[str, Any]] = field(default_factory=dict)
    scripted: list[httpx.Response] = field(default_factory=list)
    reject_values: set[str] = field(default_factory=set)
    """Values that fail validation (CB_VA01) while listed here."""
    _ids: Any = field(default_factory=lambda: count(1))

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def app(self, app_id: int, types: dict[str, str], unique: str | None = None) -> App:
        self.apps[app_id] = App(types=types, unique=unique)
        return self.apps[app_id]

    def add(
        self, app_id: int, values: dict[str, Any], when: datetime | None = None
    ) -> dict[str, Any]:
        app = self.apps[app_id]
        rid = max(app.records, default=0) + 1
        ts = ktime(when or self.tick())
        rec = {
            "$id": {"type": "__ID__", "value": str(rid)},
            "$revision": {"type": "__REVISION__", "value": "1"},
            "レコード番号": {"type": "RECORD_NUMBER", "value": str(rid)},
            "更新日時": {"type": "UPDATED_TIME", "value": ts},
            "作成日時": {"type": "CREATED_TIME", "value": ts},
        }
        for code, v in values.items():
            rec[code] = {"type": app.types.get(code, "SINGLE_LINE_TEXT"), "value": v}
        app.records[rid] = rec
        return rec

    def edit(self, app_id: int, rid: int, values: dict[str, Any]) -> None:
        rec = self.apps[app_id].records[rid]
        for code, v in values.items():
            rec[code] = {"type": self.apps[app_id].types.get(code, "SINGLE_LINE_TEXT"), "value": v}
        rec["$revision"]["value"] = str(int(rec["$revision"]["value"]) + 1)
        rec["更新日時"]["value"] = ktime(self.tick())

    # -- query language (the subset Kizuna writes) -----------------------------------------------
    def select(self, app: App, query: str) -> tuple[list[dict[str, Any]], int | None, int]:
        q = query.strip()
        limit = offset = None
        if m := re.search(r"\s*offset (\d+)$", q):
            offset, q = int(m[1]), q[: m.start()]
        if m := re.search(r"\s*limit (\d+)$", q):
            limit, q = int(m[1]), q[: m.start()]
        if m := re.search(r"\s*order by \$id asc$", q):
            q = q[: m.start()]
        rows = sorted(app.records.values(), key=lambda r: int(r["$id"]["value"]))
        for cond in [c.strip() for c in q.split(" and ") if c.strip()]:
            if cond.startswith("(") and cond.endswith(")"):
                cond = cond[1:-1]
            if m := re.fullmatch(r"\$id > (\d+)", cond):
                rows = [r for r in rows if int(r["$id"]["value"]) > int(m[1])]
            elif m := re.fullmatch(r'(\S+) >= "(.+)"', cond):
                rows = [r for r in rows if r[m[1]]["value"] >= m[2]]
            elif m := re.fullmatch(r"(\S+) in \((.*)\)", cond):
                vals = set(json.loads(f"[{m[2]}]"))
                rows = [r for r in rows if r.get(m[1], {}).get("value") in vals]
            elif m := re.fullmatch(r'(\S+) = "(.*)"', cond):
                rows = [r for r in rows if r.get(m[1], {}).get("value") == m[2]]
            else:
                raise AssertionError(f"fake kintone cannot evaluate {cond!r}")
        return rows, limit, offset or 0

    # -- wiring ------------------------------------------------------------------------------------
    def client(self) -> httpx.Client:
        router = respx.MockRouter(base_url=BASE, assert_all_called=False)
        router.route(path="/k/v1/records.json").mock(side_effect=self._records)
        router.route(path="/k/v1/records/cursor.json").mock(side_effect=self._cursor)

        def handler(request: httpx.Request) -> httpx.Response:
            method = request.headers.get("X-HTTP-Method-Override", request.method)
            self.calls.append(f"{method} {request.url.path}")
            if request.headers.get("X-Cybozu-API-Token") != "tok":
                return error(401, "GAIA_IA02", "指定したAPIトークンが正しくありません。")
            if self.scripted:
                return self.scripted.pop(0)
            return router.handler(request)

        return httpx.Client(
            base_url=BASE,
            headers={"X-Cybozu-API-Token": "tok"},
            transport=httpx.MockTransport(handler),
        )

    def _params(self, request: httpx.Request) -> dict[str, Any]:
        if request.content:
            out: dict[str, Any] = json.loads(request.content)
            return out
        return dict(request.url.params)

    def _shape(self, rec: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
        return {k: v for k, v in rec.items() if not fields or k in fields}

    def _records(self, request: httpx.Request) -> httpx.Response:
        p = self._params(request)
        app = self.apps.get(int(p["app"]))
        if app is None:
            return error(404, "GAIA_AP01", f"指定したアプリ（id: {p['app']}）が見つかりません。")
        method = request.headers.get("X-HTTP-Method-Override", request.method).upper()
        if method == "GET":
            rows, limit, offset = self.select(app, p.get("query", ""))
            if offset > 10_000:
                return error(
                    400,
                    "CB_VA01",
                    "入力内容が正しくありません。",
                    {"query": {"messages": ["offsetの値は10000以下である必要があります。"]}},
                )
            if limit is not None and limit > 500:
                return error(
                    400,
                    "CB_VA01",
                    "入力内容が正しくありません。",
                    {"query": {"messages": ["limitの値は500以下である必要があります。"]}},
                )
            rows = rows[offset : offset + (limit or 100)]
            return httpx.Response(
                200,
                json={
                    "records": [self._shape(r, p.get("fields")) for r in rows],
                    "totalCount": None,
                },
            )
        if method == "POST":
            return self._create(app, p["records"])
        if method == "PUT":
            return self._update(app, p["records"], bool(p.get("upsert")))
        if method == "DELETE":
            ids = [int(i) for i in p["ids"]]
            for i, rid in enumerate(ids):
                rev = (p.get("revisions") or [None] * len(ids))[i]
                if rid not in app.records:
                    return error(
                        404, "GAIA_RE01", f"指定したレコード（id: {rid}）が見つかりません。"
                    )
                if rev not in (None, -1) and str(rev) != app.records[rid]["$revision"]["value"]:
                    return error(
                        409,
                        "GAIA_CO02",
                        "指定したリビジョンは最新ではありません。ほかのユーザーがレコードを更新した可能性があります。",
                    )
            for rid in ids:
                del app.records[rid]
            return httpx.Response(200, json={})
        return error(405, "CB_IL02", "不正なリクエストです。")

    def _validate(self, app: App, values: dict[str, Any], rid: int | None) -> httpx.Response | None:
        for code, f in values.items():
            v = f.get("value")
            if isinstance(v, str) and v in self.reject_values:
                return error(
                    400,
                    "CB_VA01",
                    "入力内容が正しくありません。",
                    {f"record.{code}.value": {"messages": ["値が不正です。"]}},
                )
        if app.unique and app.unique in values:
            v = values[app.unique]["value"]
            clash = [
                r
                for i, r in app.records.items()
                if i != rid and r.get(app.unique, {}).get("value") == v
            ]
            if clash:
                return error(
                    400,
                    "CB_VA01",
                    "入力内容が正しくありません。",
                    {
                        f"record.{app.unique}.value": {
                            "messages": ["値がほかのレコードと重複しています。"]
                        }
                    },
                )
        return None

    def _create(self, app: App, records: list[dict[str, Any]]) -> httpx.Response:
        for rec in records:
            if bad := self._validate(app, rec, None):
                return bad
        app_id = next(k for k, v in self.apps.items() if v is app)
        made = [self.add(app_id, {k: v["value"] for k, v in rec.items()}) for rec in records]
        return httpx.Response(
            200, json={"ids": [r["$id"]["value"] for r in made], "revisions": ["1"] * len(made)}
        )

    def _update(self, app: App, records: list[dict[str, Any]], upsert: bool) -> httpx.Response:
        app_id = next(k for k, v in self.apps.items() if v is app)
        plan = []
        for item in records:
            if "id" in item:
                rid: int | None = int(item["id"])
                if rid not in app.records:
                    return error(
                        404, "GAIA_RE01", f"指定したレコード（id: {rid}）が見つかりません。"
                    )
            else:
                key = item["updateKey"]
                rid = next(
                    (
                        i
                        for i, r in app.records.items()
                        if r.get(key["field"], {}).get("value") == key["value"]
                    ),
                    None,
                )
                if rid is None and not upsert:
                    return error(404, "GAIA_RE20", "指定したレコードが見つかりません。")
            rev = item.get("revision")
            if (
                rid is not None
                and rev not in (None, -1)
                and str(rev) != app.records[rid]["$revision"]["value"]
            ):
                return error(
                    409,
                    "GAIA_CO02",
                    "指定したリビジョンは最新ではありません。ほかのユーザーがレコードを更新した可能性があります。",
                )
            if bad := self._validate(app, item.get("record", {}), rid):
                return bad
            plan.append((rid, item))
        out = []
        for rid, item in plan:
            values = {k: v["value"] for k, v in item.get("record", {}).items()}
            if rid is None:
                if "updateKey" in item:
                    values[item["updateKey"]["field"]] = item["updateKey"]["value"]
                rec = self.add(app_id, values)
                out.append({"id": rec["$id"]["value"], "revision": "1", "operation": "INSERT"})
            else:
                self.edit(app_id, rid, values)
                out.append(
                    {
                        "id": str(rid),
                        "revision": app.records[rid]["$revision"]["value"],
                        "operation": "UPDATE",
                    }
                )
        return httpx.Response(200, json={"records": out})

    def _cursor(self, request: httpx.Request) -> httpx.Response:
        p = self._params(request)
        if request.method == "POST":
            app = self.apps[int(p["app"])]
            rows, _, _ = self.select(app, p.get("query", ""))
            cid = f"9a9716fe-1394-4677-a1c7-{next(self._ids):012d}"
            self.cursors[cid] = {
                "rows": [self._shape(r, p.get("fields")) for r in rows],
                "size": int(p.get("size", 100)),
                "pos": 0,
            }
            return httpx.Response(200, json={"id": cid, "totalCount": str(len(rows))})
        cid = str(p["id"])
        cur = self.cursors.get(cid)
        if request.method == "DELETE":
            self.cursors.pop(cid, None)
            return httpx.Response(200, json={})
        if cur is None:
            return error(
                400, "GAIA_CN01", "指定したカーソルが存在しません。有効期限切れの可能性があります。"
            )
        chunk = cur["rows"][cur["pos"] : cur["pos"] + cur["size"]]
        cur["pos"] += cur["size"]
        more = cur["pos"] < len(cur["rows"])
        if not more:
            del self.cursors[cid]
        return httpx.Response(200, json={"records": chunk, "next": more})

    def expire_cursors(self) -> None:
        self.cursors.clear()
