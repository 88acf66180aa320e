"""A local HTTPS Salesforce for multi-call flows (simple-salesforce always builds https URLs).

It serves what the connector and the write side use, with the documented shapes: ``query`` /
``queryAll`` paged by ``nextRecordsUrl``, ``sobjects/X/deleted/``, Bulk 2.0 query jobs whose
CSV result pages chain by ``Sforce-Locator`` (``"null"`` on the last), ``Sforce-Limit-Info`` on
every REST answer, a 403 ``REQUEST_LIMIT_EXCEEDED`` once the daily quota is spent, and
``composite/sobjects`` collections (upsert by external id, update, delete). Certificates come
from trustme; the client session must not trust the environment (``REQUESTS_CA_BUNDLE``).
"""

from __future__ import annotations

import csv
import io
import json
import re
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
import trustme
from simple_salesforce.api import Salesforce

VERSION = "61.0"


def stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def parse_stamp(s: str) -> datetime:
    s = s.replace("Z", "+00:00")
    if s[-5] in "+-" and s[-3] != ":":
        s = s[:-2] + ":" + s[-2:]
    return datetime.fromisoformat(s)


@dataclass
class Org:
    """The fake org's state; tests edit it directly between runs."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deleted_log: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    earliest_deleted: dict[str, str] = field(default_factory=dict)
    page_size: int = 2
    api_used: int = 0
    api_total: int = 15000
    requests: list[str] = field(default_factory=list)
    exhausted_after: int | None = None
    """Another integration spends the rest of the day's quota after this many REST calls."""
    external_ids: dict[str, str] = field(default_factory=dict)
    """object → its external id field, for composite upserts."""
    fail_ids: set[str] = field(default_factory=set)
    """External ids whose write fails once (then succeed), for partial-failure tests."""
    _ids: Iterator[int] = field(default_factory=lambda: count(1))
    _cursors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _jobs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def new_id(self, obj: str) -> str:
        prefix = {"Opportunity": "006", "Task": "00T", "CampaignMember": "00v"}.get(obj, "001")
        return f"{prefix}{next(self._ids):015d}"

    def add(self, obj: str, rec: dict[str, Any], when: datetime) -> dict[str, Any]:
        rec = {**rec, "SystemModstamp": stamp(when), "IsDeleted": rec.get("IsDeleted", False)}
        rec.setdefault("Id", self.new_id(obj))
        self.records.setdefault(obj, []).append(rec)
        return rec

    def find(self, obj: str, rid: str) -> dict[str, Any] | None:
        return next((r for r in self.records.get(obj, []) if r["Id"] == rid), None)


def _get(rec: dict[str, Any], path: str) -> Any:
    cur: Any = rec
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _rest_shape(obj: str, rec: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attributes": {"type": obj, "url": f"/services/data/v{VERSION}/sobjects/{obj}/{rec['Id']}"}
    }
    for f in fields:
        if "." in f:
            rel, sub = f.split(".", 1)
            node = out.setdefault(rel, {"attributes": {"type": rel}})
            if rec.get(rel) is None:
                out[rel] = None
            elif node is not None:
                node[sub] = _get(rec, f)
        else:
            out[f] = rec.get(f)
    return out


_SOQL = re.compile(
    r"SELECT (?P<fields>.+?) FROM (?P<obj>\w+)(?: WHERE (?P<where>.+?))?(?: ORDER BY (?P<order>.+))?$"
)


def run_soql(
    org: Org, soql: str, include_deleted: bool
) -> tuple[str, list[str], list[dict[str, Any]]]:
    m = _SOQL.match(soql.strip())
    assert m, soql
    obj = m["obj"]
    fields = [f.strip() for f in m["fields"].split(",")]
    rows = list(org.records.get(obj, []))
    if not include_deleted:
        rows = [r for r in rows if not r.get("IsDeleted")]
    for cond in (m["where"] or "").split(" AND "):
        cond = cond.strip()
        if cond.startswith("(") and cond.endswith(")"):
            cond = cond[1:-1]
        if not cond:
            continue
        if mm := re.match(r"(\w+) >= (\S+)", cond):
            lo = parse_stamp(mm[2])
            rows = [r for r in rows if parse_stamp(r[mm[1]]) >= lo]
        elif mm := re.match(r"(\w+) IN \((.*)\)", cond):
            vals = {v.strip().strip("'") for v in mm[2].split(",")}
            rows = [r for r in rows if str(r.get(mm[1])) in vals]
        elif mm := re.match(r"(\w+) = '(.*)'", cond):
            rows = [r for r in rows if str(r.get(mm[1])) == mm[2]]
        else:
            raise AssertionError(f"fake cannot filter on {cond!r}")
    if m["order"]:
        keys = [k.strip() for k in m["order"].split(",")]
        rows.sort(key=lambda r: tuple(str(r.get(k)) for k in keys))
    return obj, fields, rows


class _Handler(BaseHTTPRequestHandler):
    org: Org
    protocol_version = "HTTP/1.1"  # keep-alive: one TLS handshake per client, not per call

    def log_message(self, *args: Any) -> None:
        pass

    def _send(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        ctype: str = "application/json",
    ) -> None:
        data = (
            b""
            if body is None
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _rest(self, status: int, body: Any = None) -> None:
        org = self.org
        self._send(status, body, {"Sforce-Limit-Info": f"api-usage={org.api_used}/{org.api_total}"})

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else None

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PUT(self) -> None:
        self._route("PUT")

    def _route(self, method: str) -> None:
        org = self.org
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        path = u.path.removeprefix(f"/services/data/v{VERSION}/")
        org.requests.append(f"{method} {path}")
        if path.startswith("jobs/"):
            return self._bulk(method, path, q)
        org.api_used += 1
        if org.exhausted_after is not None and org.api_used > org.exhausted_after:
            org.api_used = org.api_total + 1
        if org.api_used > org.api_total:
            return self._rest(
                403,
                [
                    {
                        "message": "TotalRequests Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ],
            )
        if path in ("query/", "queryAll/") and "q" in q:
            obj, fields, rows = run_soql(org, q["q"], path == "queryAll/")
            if fields == ["COUNT()"]:
                return self._rest(200, {"totalSize": len(rows), "done": True, "records": []})
            shaped = [_rest_shape(obj, r, fields) for r in rows]
            return self._page(path, shaped, 0)
        if m := re.match(r"(query|queryAll)/(\w+)-(\d+)$", path):
            return self._page(m[1] + "/", org._cursors[m[2]], int(m[3]), m[2])
        if m := re.match(r"sobjects/(\w+)/deleted/$", path):
            start, end = parse_stamp(q["start"]), parse_stamp(q["end"])
            log = [
                d
                for d in org.deleted_log.get(m[1], [])
                if start <= parse_stamp(d["deletedDate"]) <= end
            ]
            return self._rest(
                200,
                {
                    "deletedRecords": log,
                    "earliestDateAvailable": org.earliest_deleted.get(
                        m[1], "2000-01-01T00:00:00.000+0000"
                    ),
                    "latestDateCovered": stamp(end),
                },
            )
        if path.startswith("composite/sobjects"):
            return self._composite(method, path, q)
        return self._rest(404, [{"errorCode": "NOT_FOUND", "message": path}])

    def _page(
        self, path: str, rows: list[dict[str, Any]], offset: int, key: str | None = None
    ) -> None:
        org = self.org
        chunk = rows[offset : offset + org.page_size]
        body: dict[str, Any] = {
            "totalSize": len(rows),
            "done": offset + org.page_size >= len(rows),
            "records": chunk,
        }
        if not body["done"]:
            key = key or f"01g{len(org._cursors):05d}"
            org._cursors[key] = rows
            body["nextRecordsUrl"] = (
                f"/services/data/v{VERSION}/{path}{key}-{offset + org.page_size}"
            )
        self._rest(200, body)

    # -- Bulk 2.0 ---------------------------------------------------------------------------
    def _bulk(self, method: str, path: str, q: dict[str, str]) -> None:
        org = self.org
        if method == "POST" and path == "jobs/query":
            body = self._body()
            obj, fields, rows = run_soql(org, body["query"], body["operation"] == "queryAll")
            jid = f"750{len(org._jobs):015d}"
            org._jobs[jid] = {"fields": fields, "rows": rows, "polls": 0}
            return self._send(
                200,
                {
                    "id": jid,
                    "operation": body["operation"],
                    "object": obj,
                    "state": "UploadComplete",
                },
            )
        if m := re.match(r"jobs/query/(\w+)$", path):
            job = org._jobs[m[1]]
            job["polls"] += 1
            state = "InProgress" if job["polls"] == 1 else "JobComplete"
            return self._send(200, {"id": m[1], "state": state})
        if m := re.match(r"jobs/query/(\w+)/results$", path):
            job = org._jobs[m[1]]
            start = int(q.get("locator") or 0)
            size = int(q.get("maxRecords") or 50000)
            rows = job["rows"][start : start + size]
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(job["fields"])
            for r in rows:
                vals = []
                for f in job["fields"]:
                    v = _get(r, f)
                    vals.append(
                        ""
                        if v is None
                        else ("true" if v is True else "false" if v is False else str(v))
                    )
                w.writerow(vals)
            nxt = start + size
            loc = str(nxt) if nxt < len(job["rows"]) else "null"
            return self._send(
                200,
                buf.getvalue(),
                {"Sforce-Locator": loc, "Sforce-NumberOfRecords": str(len(rows))},
                "text/csv",
            )
        if method == "POST" and path == "jobs/ingest":
            body = self._body()
            jid = f"750i{len(org._jobs):014d}"
            org._jobs[jid] = {"ingest": body, "csv": "", "failed": [], "done": 0}
            return self._send(
                200,
                {
                    "id": jid,
                    "operation": body["operation"],
                    "object": body["object"],
                    "state": "Open",
                    "contentType": "CSV",
                },
            )
        if (m := re.match(r"jobs/ingest/(\w+)/batches$", path)) and method == "PUT":
            n = int(self.headers.get("Content-Length") or 0)
            org._jobs[m[1]]["csv"] += self.rfile.read(n).decode()
            return self._send(201, None)
        if (m := re.match(r"jobs/ingest/(\w+)$", path)) and method == "PATCH":
            self._body()
            self._ingest(org._jobs[m[1]])
            return self._send(200, {"id": m[1], "state": "UploadComplete"})
        if (m := re.match(r"jobs/ingest/(\w+)$", path)) and method == "GET":
            job = org._jobs[m[1]]
            return self._send(
                200,
                {
                    "id": m[1],
                    "state": "JobComplete",
                    "numberRecordsProcessed": job["done"],
                    "numberRecordsFailed": len(job["failed"]),
                },
            )
        if m := re.match(r"jobs/ingest/(\w+)/failedResults$", path):
            job = org._jobs[m[1]]
            buf = io.StringIO()
            fields = list(job["failed"][0][0]) if job["failed"] else []
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["sf__Id", "sf__Error", *fields])
            for row, err in job["failed"]:
                w.writerow(["", err, *[row[f] for f in fields]])
            return self._send(200, buf.getvalue(), ctype="text/csv")
        self._send(404, [{"errorCode": "NOT_FOUND", "message": path}])

    def _ingest(self, job: dict[str, Any]) -> None:
        org = self.org
        spec = job["ingest"]
        obj, ext = spec["object"], spec.get("externalIdFieldName", "Id")
        for row in csv.DictReader(io.StringIO(job["csv"])):
            fields = {k: (None if v == "#N/A" else v) for k, v in row.items()}
            key = fields[ext]
            if key in org.fail_ids:
                org.fail_ids.discard(key)
                job["failed"].append(
                    (row, "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--")
                )
                continue
            job["done"] += 1
            cur = next(
                (
                    r
                    for r in org.records.get(obj, [])
                    if str(r.get(ext)) == key and not r.get("IsDeleted")
                ),
                None,
            )
            if cur is None:
                org.add(obj, fields, datetime.now(UTC))
            else:
                cur.update(fields)
                cur["SystemModstamp"] = stamp(datetime.now(UTC))

    # -- Composite sObject collections --------------------------------------------------------
    def _composite(self, method: str, path: str, q: dict[str, str]) -> None:
        org = self.org
        if method == "DELETE":
            out = []
            for rid in q["ids"].split(","):
                hit = None
                for obj, recs in org.records.items():
                    for r in recs:
                        if r["Id"] == rid and not r.get("IsDeleted"):
                            hit = (obj, r)
                if hit is None:
                    out.append(
                        {
                            "id": rid,
                            "success": False,
                            "errors": [
                                {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted"}
                            ],
                        }
                    )
                    continue
                hit[1]["IsDeleted"] = True
                hit[1]["SystemModstamp"] = stamp(datetime.now(UTC))
                out.append({"id": rid, "success": True, "errors": []})
            return self._rest(200, out)
        body = self._body()
        m = re.match(r"composite/sobjects/(\w+)/(\w+)$", path)
        out = []
        for rec in body["records"]:
            obj = rec["attributes"]["type"]
            fields = {k: v for k, v in rec.items() if k != "attributes"}
            if m:  # upsert by external id
                ext = m[2]
                key = str(fields[ext])
                if key in org.fail_ids:
                    org.fail_ids.discard(key)
                    out.append(
                        {
                            "success": False,
                            "errors": [
                                {
                                    "statusCode": "UNABLE_TO_LOCK_ROW",
                                    "message": "unable to obtain exclusive access to this record",
                                    "fields": [],
                                }
                            ],
                        }
                    )
                    continue
                cur = next(
                    (
                        r
                        for r in org.records.get(obj, [])
                        if str(r.get(ext)) == key and not r.get("IsDeleted")
                    ),
                    None,
                )
                if cur is None:
                    new = org.add(obj, fields, datetime.now(UTC))
                    out.append({"id": new["Id"], "success": True, "errors": [], "created": True})
                else:
                    cur.update(fields)
                    cur["SystemModstamp"] = stamp(datetime.now(UTC))
                    out.append({"id": cur["Id"], "success": True, "errors": [], "created": False})
            elif method == "PATCH":
                cur = org.find(obj, fields.pop("Id"))
                if cur is None or cur.get("IsDeleted"):
                    out.append(
                        {
                            "success": False,
                            "errors": [
                                {
                                    "statusCode": "ENTITY_IS_DELETED",
                                    "message": "entity is deleted",
                                    "fields": [],
                                }
                            ],
                        }
                    )
                    continue
                cur.update(fields)
                cur["SystemModstamp"] = stamp(datetime.now(UTC))
                out.append({"id": cur["Id"], "success": True, "errors": []})
            else:  # POST create
                if obj == "CampaignMember":
                    dup = next(
                        (
                            r
                            for r in org.records.get(obj, [])
                            if not r.get("IsDeleted")
                            and r["CampaignId"] == fields.get("CampaignId")
                            and (r.get("ContactId") or r.get("LeadId"))
                            == (fields.get("ContactId") or fields.get("LeadId"))
                        ),
                        None,
                    )
                    if dup is not None:
                        out.append(
                            {
                                "success": False,
                                "errors": [
                                    {
                                        "statusCode": "DUPLICATE_VALUE",
                                        "message": "Already a campaign member.",
                                        "fields": [],
                                    }
                                ],
                            }
                        )
                        continue
                new = org.add(obj, fields, datetime.now(UTC))
                out.append({"id": new["Id"], "success": True, "errors": []})
        self._rest(200, out)


@lru_cache(maxsize=1)
def _certificates() -> tuple[trustme.CA, trustme.LeafCert]:
    """One CA and server certificate per test session (key generation is the slow part)."""
    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    return ca, ca.issue_cert("127.0.0.1", "localhost")


class FakeSalesforce:
    """``with FakeSalesforce() as fake: sf = fake.client()``."""

    def __init__(self, org: Org | None = None) -> None:
        self.org = org or Org()
        self.ca, cert = _certificates()
        handler = type("H", (_Handler,), {"org": self.org})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._ca_file = self.ca.cert_pem.tempfile()
        self._ca_ctx = self._ca_file.__enter__()

    def __enter__(self) -> FakeSalesforce:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._ca_file.__exit__(None, None, None)

    def session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override verify
        s.verify = self._ca_ctx
        return s

    def client(self) -> Salesforce:
        return Salesforce(
            instance_url=f"https://127.0.0.1:{self.port}",
            session_id="00Dfake!token",
            version=VERSION,
            session=self.session(),
        )
