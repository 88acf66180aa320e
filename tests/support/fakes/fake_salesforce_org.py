"""The fake org behind ``FakeSalesforce``: its records, the SOQL it answers, the writes it applies.

Its own module because this is what tests set up and assert on (``Org``, ``stamp``) and what
the server only forwards to: the SOQL subset (fields, ``WHERE`` on ``>=`` / ``IN`` / ``=``,
``ORDER BY``), the REST record shape, composite sObject collections (upsert by external id,
update, delete) and Bulk 2.0 ingest. HTTP, TLS, paging and limits stay in ``fake_salesforce``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from typing import Any

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
    invalid: dict[str, tuple[str, str]] = field(default_factory=dict)
    """External id → (statusCode, message): a write that always fails (a validation rule)."""
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


def field_value(rec: dict[str, Any], path: str) -> Any:
    cur: Any = rec
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def rest_shape(obj: str, rec: dict[str, Any], fields: list[str]) -> dict[str, Any]:
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
                node[sub] = field_value(rec, f)
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
        elif mm := re.match(r"(\w+) = (true|false)$", cond):
            rows = [r for r in rows if bool(r.get(mm[1])) == (mm[2] == "true")]
        else:
            raise AssertionError(f"fake cannot filter on {cond!r}")
    if m["order"]:
        keys = [k.strip() for k in m["order"].split(",")]
        rows.sort(key=lambda r: tuple(str(r.get(k)) for k in keys))
    return obj, fields, rows


def ingest(org: Org, job: dict[str, Any]) -> None:
    """Apply a Bulk 2.0 ingest job's CSV: upsert by its external id, failing ``fail_ids`` once."""
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


def composite(
    org: Org, method: str, path: str, q: dict[str, str], body: Any
) -> list[dict[str, Any]]:
    """Apply a composite sObject collection request; one result per record, in order."""
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
        return out
    m = re.match(r"composite/sobjects/(\w+)/(\w+)$", path)
    out = []
    for rec in body["records"]:
        obj = rec["attributes"]["type"]
        fields = {k: v for k, v in rec.items() if k != "attributes"}
        if m:  # upsert by external id
            ext = m[2]
            key = str(fields[ext])
            if key in org.invalid:
                code, message = org.invalid[key]
                out.append(
                    {
                        "success": False,
                        "errors": [{"statusCode": code, "message": message, "fields": []}],
                    }
                )
                continue
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
    return out
