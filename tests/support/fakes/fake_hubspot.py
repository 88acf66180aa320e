"""A stateful HubSpot CRM v3 behind a respx router, with the documented request/answer shapes.

Search (``filterGroups`` GTE, ascending sort, ``limit`` ≤ 200, ``after`` offsets, a 400 past
10,000 results), archived listing, owners, deal pipelines, v4 association batch reads, batch
read/upsert/archive (207 multi-status on partial failure), list memberships, and scripted
429s whose bodies carry ``policyName``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import httpx
import respx

BASE = "https://api.hubapi.com"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def mod_prop(obj: str) -> str:
    return "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"


def to_ms(v: str) -> int:
    if v.isdigit():
        return int(v)
    return int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass
class FakeHubSpot:
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    assoc: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    owners: list[dict[str, Any]] = field(default_factory=list)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    lists: dict[str, set[str]] = field(default_factory=dict)
    unique: dict[str, str] = field(default_factory=lambda: {"contacts": "email"})
    """object → a unique property usable as ``idProperty`` (besides ``hs_object_id``)."""
    scripted: list[httpx.Response] = field(default_factory=list)
    """Answers served before the real ones (429s, 5xx)."""
    fail_keys: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    clock: datetime = T0
    _ids: Any = field(default_factory=lambda: count(101))

    # -- state helpers --------------------------------------------------------------------------
    def tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def add(self, obj: str, props: dict[str, Any], when: datetime | None = None) -> dict[str, Any]:
        rid = str(next(self._ids))
        ts = iso(when or self.tick())
        rec = {
            "id": rid,
            "properties": {**props, "hs_object_id": rid, mod_prop(obj): ts, "createdate": ts},
            "createdAt": ts,
            "updatedAt": ts,
            "archived": False,
        }
        self.objects.setdefault(obj, {})[rid] = rec
        return rec

    def touch(self, obj: str, rid: str, **props: Any) -> None:
        rec = self.objects[obj][rid]
        ts = iso(self.tick())
        rec["properties"].update(props, **{mod_prop(obj): ts})
        rec["updatedAt"] = ts

    def link(self, a: str, aid: str, b: str, bid: str) -> None:
        self.assoc.setdefault((a, aid, b), []).append(bid)
        self.assoc.setdefault((b, bid, a), []).append(aid)

    # -- wiring -----------------------------------------------------------------------------------
    def client(self) -> httpx.Client:
        router = respx.MockRouter(base_url=BASE, assert_all_called=False)
        r = router
        r.post(path__regex=r"^/crm/v3/objects/(?P<obj>\w+)/search$").mock(side_effect=self._search)
        r.post(path__regex=r"^/crm/v3/objects/(?P<obj>\w+)/batch/read$").mock(
            side_effect=self._batch_read
        )
        r.post(path__regex=r"^/crm/v3/objects/(?P<obj>\w+)/batch/upsert$").mock(
            side_effect=self._batch_upsert
        )
        r.post(path__regex=r"^/crm/v3/objects/(?P<obj>\w+)/batch/update$").mock(
            side_effect=self._batch_update
        )
        r.post(path__regex=r"^/crm/v3/objects/(?P<obj>\w+)/batch/archive$").mock(
            side_effect=self._batch_archive
        )
        r.get(path__regex=r"^/crm/v3/objects/(?P<obj>\w+)$").mock(side_effect=self._list)
        r.get("/crm/v3/owners").mock(side_effect=self._owners)
        r.get("/crm/v3/pipelines/deals").mock(side_effect=self._pipelines)
        r.post(path__regex=r"^/crm/v4/associations/(?P<a>\w+)/(?P<b>\w+)/batch/read$").mock(
            side_effect=self._assoc_read
        )
        r.put(
            path__regex=r"^/crm/v4/objects/(?P<a>\w+)/(?P<aid>\w+)/associations/default/(?P<b>\w+)/(?P<bid>\w+)$"
        ).mock(side_effect=self._assoc_put)
        r.get(path__regex=r"^/crm/v3/lists/(?P<lid>\w+)/memberships$").mock(
            side_effect=self._members
        )
        r.put(path__regex=r"^/crm/v3/lists/(?P<lid>\w+)/memberships/(?P<op>add|remove)$").mock(
            side_effect=self._member_change
        )
        return httpx.Client(base_url=BASE, transport=httpx.MockTransport(self._handle(router)))

    def _handle(self, router: respx.MockRouter) -> Any:
        def handler(request: httpx.Request) -> httpx.Response:
            self.calls.append(f"{request.method} {request.url.path}")
            if self.scripted:
                return self.scripted.pop(0)
            return router.handler(request)

        return handler

    # -- endpoints ---------------------------------------------------------------------------------
    def _search(self, request: httpx.Request, obj: str) -> httpx.Response:
        body = json.loads(request.content)
        limit = int(body.get("limit", 10))
        after = int(body.get("after") or 0)
        if limit > 200:
            return httpx.Response(
                400,
                json={
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": "limit must be ≤ 200",
                },
            )
        if after + limit > 10_000:
            return httpx.Response(
                400,
                json={
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": "Search results are limited to 10,000 results",
                },
            )
        rows = [r for r in self.objects.get(obj, {}).values() if not r["archived"]]
        for group in body.get("filterGroups", []):
            for f in group["filters"]:
                assert f["operator"] == "GTE"
                lo = int(f["value"])
                rows = [r for r in rows if to_ms(r["properties"][f["propertyName"]]) >= lo]
        sort = body["sorts"][0]["propertyName"]
        rows.sort(key=lambda r: (to_ms(r["properties"][sort]), int(r["id"])))
        chunk = rows[after : after + limit]
        want = set(body.get("properties", []))
        results = [
            {
                **r,
                "properties": {
                    k: v
                    for k, v in r["properties"].items()
                    if k in want | {"hs_object_id", "createdate", mod_prop(obj)}
                },
            }
            for r in chunk
        ]
        out: dict[str, Any] = {"total": len(rows), "results": results}
        if after + limit < len(rows):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return httpx.Response(200, json=out)

    def _list(self, request: httpx.Request, obj: str) -> httpx.Response:
        archived = request.url.params.get("archived") == "true"
        limit = int(request.url.params.get("limit", 10))
        after = int(request.url.params.get("after") or 0)
        rows = sorted(
            (r for r in self.objects.get(obj, {}).values() if r["archived"] == archived),
            key=lambda r: int(r["id"]),
        )
        out: dict[str, Any] = {"results": rows[after : after + limit]}
        if after + limit < len(rows):
            out["paging"] = {"next": {"after": str(after + limit), "link": "…"}}
        return httpx.Response(200, json=out)

    def _owners(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": self.owners})

    def _pipelines(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": self.pipelines})

    def _assoc_read(self, request: httpx.Request, a: str, b: str) -> httpx.Response:
        body = json.loads(request.content)
        results = []
        for inp in body["inputs"]:
            to = self.assoc.get((a, str(inp["id"]), b), [])
            if to:
                results.append(
                    {
                        "from": {"id": str(inp["id"])},
                        "to": [
                            {
                                "toObjectId": int(t),
                                "associationTypes": [
                                    {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": None}
                                ],
                            }
                            for t in to
                        ],
                    }
                )
        return httpx.Response(
            200,
            json={
                "status": "COMPLETE",
                "results": results,
                "startedAt": iso(T0),
                "completedAt": iso(T0),
            },
        )

    def _assoc_put(
        self, request: httpx.Request, a: str, aid: str, b: str, bid: str
    ) -> httpx.Response:
        if bid not in self.assoc.get((a, aid, b), []):
            self.link(a, aid, b, bid)
        return httpx.Response(
            200,
            json={
                "status": "COMPLETE",
                "results": [
                    {
                        "fromObjectTypeId": a,
                        "fromObjectId": int(aid),
                        "toObjectTypeId": b,
                        "toObjectId": int(bid),
                        "labels": [],
                    }
                ],
            },
        )

    def _find(self, obj: str, id_prop: str | None, key: str) -> dict[str, Any] | None:
        for r in self.objects.get(obj, {}).values():
            if r["archived"]:
                continue
            if (id_prop in (None, "hs_object_id") and r["id"] == key) or (
                id_prop and str(r["properties"].get(id_prop)) == key
            ):
                return r
        return None

    def _batch_read(self, request: httpx.Request, obj: str) -> httpx.Response:
        body = json.loads(request.content)
        id_prop = body.get("idProperty")
        want = set(body.get("properties", []))
        results, missing = [], []
        for inp in body["inputs"]:
            r = self._find(obj, id_prop, str(inp["id"]))
            if r is None:
                missing.append(str(inp["id"]))
                continue
            props = {k: v for k, v in r["properties"].items() if k in want | {"hs_object_id"}}
            results.append({"id": r["id"], "properties": props, "archived": False})
        out: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            out["numErrors"] = 1
            out["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some records.",
                    "context": {"ids": missing},
                }
            ]
            return httpx.Response(207, json=out)
        return httpx.Response(200, json=out)

    def _batch_upsert(self, request: httpx.Request, obj: str) -> httpx.Response:
        body = json.loads(request.content)
        results, errors = [], []
        for inp in body["inputs"]:
            key = str(inp["id"])
            id_prop = inp.get("idProperty")
            if key in self.fail_keys:
                self.fail_keys.discard(key)
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f"Property values were not valid: {key}",
                        "context": {"ids": [key]},
                    }
                )
                continue
            r = self._find(obj, id_prop, key)
            new = r is None
            if r is None:
                props = dict(inp["properties"])
                if id_prop and id_prop != "hs_object_id":
                    props[id_prop] = key
                r = self.add(obj, props)
            else:
                self.touch(obj, r["id"], **inp["properties"])
            results.append(
                {"id": r["id"], "properties": r["properties"], "new": new, "archived": False}
            )
        out: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            out["errors"] = errors
            out["numErrors"] = len(errors)
            return httpx.Response(207, json=out)
        return httpx.Response(200, json=out)

    def _batch_update(self, request: httpx.Request, obj: str) -> httpx.Response:
        body = json.loads(request.content)
        results, errors = [], []
        for inp in body["inputs"]:
            r = self.objects.get(obj, {}).get(str(inp["id"]))
            if r is None or r["archived"]:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": "Object not found",
                        "context": {"ids": [str(inp["id"])]},
                    }
                )
                continue
            self.touch(obj, r["id"], **inp["properties"])
            results.append({"id": r["id"], "properties": r["properties"], "archived": False})
        out: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            out["errors"] = errors
            out["numErrors"] = len(errors)
            return httpx.Response(207, json=out)
        return httpx.Response(200, json=out)

    def _batch_archive(self, request: httpx.Request, obj: str) -> httpx.Response:
        for inp in json.loads(request.content)["inputs"]:
            r = self.objects.get(obj, {}).get(str(inp["id"]))
            if r is not None:
                r["archived"] = True
        return httpx.Response(204)

    def _members(self, request: httpx.Request, lid: str) -> httpx.Response:
        ids = sorted(self.lists.get(lid, set()), key=int)
        limit = int(request.url.params.get("limit", 100))
        after = int(request.url.params.get("after") or 0)
        out: dict[str, Any] = {
            "results": [
                {"recordId": i, "membershipTimestamp": iso(T0)} for i in ids[after : after + limit]
            ]
        }
        if after + limit < len(ids):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return httpx.Response(200, json=out)

    def _member_change(self, request: httpx.Request, lid: str, op: str) -> httpx.Response:
        ids = [str(x) for x in json.loads(request.content)]
        members = self.lists.setdefault(lid, set())
        known = set(self.objects.get("contacts", {}))
        missing = [i for i in ids if i not in known]
        if op == "add":
            added = [i for i in ids if i in known and i not in members]
            members.update(added)
            return httpx.Response(200, json={"recordIdsAdded": added, "recordIdsMissing": missing})
        removed = [i for i in ids if i in members]
        members.difference_update(removed)
        return httpx.Response(200, json={"recordIdsRemoved": removed, "recordIdsMissing": missing})


def rate_limited(
    policy: str = "TEN_SECONDLY_ROLLING", retry_after: str | None = None
) -> httpx.Response:
    """HubSpot's documented 429 body and headers."""
    headers = {
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Daily": "250000",
        "X-HubSpot-RateLimit-Daily-Remaining": "0" if policy == "DAILY" else "1000",
    }
    if retry_after:
        headers["Retry-After"] = retry_after
    return httpx.Response(
        429,
        headers=headers,
        json={
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": "c1a5f0b5-6f0a-4a3d-9d8c-2b0c6f3b8b7e",
            "policyName": policy,
            "groupName": "publicapi:private-app-api-calls",
        },
    )
