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
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
import trustme
from simple_salesforce.api import Salesforce

from tests.support.fakes.fake_salesforce_org import (
    VERSION,
    Org,
    composite,
    field_value,
    ingest,
    parse_stamp,
    rest_shape,
    run_soql,
    stamp,
)


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
            shaped = [rest_shape(obj, r, fields) for r in rows]
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
                    v = field_value(r, f)
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
            ingest(org, org._jobs[m[1]])
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

    # -- Composite sObject collections --------------------------------------------------------
    def _composite(self, method: str, path: str, q: dict[str, str]) -> None:
        body = None if method == "DELETE" else self._body()
        self._rest(200, composite(self.org, method, path, q, body))


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
