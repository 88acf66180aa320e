"""Writing to Salesforce: upsert by external id, campaign membership, tasks, computed fields.

Every record is written by a deterministic key. Objects Kizuna creates (a follow-up Task) carry
an external id field (``Kizuna_Key__c``: External ID + Unique) and are *upserted* on it through
``composite/sobjects/{Object}/{ExternalIdField}`` (200 records a call, ``allOrNone: false``, so
one bad record does not sink the batch) — a retried or rerun create updates the record it
already made. Campaign members are keyed by (campaign, contact/lead); Salesforce itself refuses
a second membership (``DUPLICATE_VALUE``), which counts as done. Past ``bulk_threshold``
records a plan goes through a Bulk API 2.0 ingest job instead, and its ``failedResults`` CSV
gives the per-record failures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Any

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors.crm import write as w
from connectors.crm.salesforce_errors import translate
from connectors.crm.salesforce_values import soql_in
from kizuna.errors import TransientError

COMPOSITE = 200
RETRYABLE = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}
ALREADY_DONE = {"DUPLICATE_VALUE", "ENTITY_IS_DELETED"}
CONTACT_PREFIX, LEAD_PREFIX = "003", "00Q"


def current(
    sf: Salesforce, obj: str, key_field: str, keys: Sequence[str], fields: Sequence[str]
) -> dict[str, w.Current]:
    out: dict[str, w.Current] = {}
    cols = list(dict.fromkeys(["Id", key_field, *fields]))
    for part in w.chunked(sorted(set(keys)), COMPOSITE):
        q = f"SELECT {', '.join(cols)} FROM {obj} WHERE {key_field} IN ({soql_in(part)})"
        try:
            rows = list(sf.query_all_iter(q))
        except SalesforceError as exc:
            raise translate(exc) from None
        for row in rows:
            out[str(row[key_field])] = w.Current(
                target_id=str(row["Id"]), fields={f: row.get(f) for f in fields}
            )
    return out


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, date) else v


def _outcomes(ops: Sequence[w.WriteOp], results: Sequence[Mapping[str, Any]]) -> list[w.Outcome]:
    out = []
    for op, res in zip(ops, results, strict=True):
        if res.get("success"):
            out.append(w.Outcome(op.key, op.action, True, str(res.get("id") or op.target_id)))
            continue
        errs = res.get("errors") or [{}]
        code = str(errs[0].get("statusCode", ""))
        if code in ALREADY_DONE:
            out.append(w.Outcome(op.key, op.action, True, op.target_id))
            continue
        msg = f"{code} {errs[0].get('message', '')}".strip()
        out.append(w.Outcome(op.key, op.action, False, op.target_id, msg, code in RETRYABLE))
    return out


def _call(
    sf: Salesforce, ops: Sequence[w.WriteOp], path: str, method: str, **kw: Any
) -> list[w.Outcome]:
    try:
        results = sf.restful(path, method=method, **kw) or []
    except SalesforceError as exc:
        err = translate(exc)
        if not isinstance(err, TransientError):
            raise err from None
        return [w.Outcome(op.key, op.action, False, op.target_id, str(err), True) for op in ops]
    return _outcomes(ops, results)


def execute(
    sf: Salesforce,
    obj: str,
    key_field: str,
    p: w.WritePlan,
    *,
    bulk_threshold: int = 2000,
    bulk_wait: float = 5.0,
) -> list[w.Outcome]:
    out: list[w.Outcome] = []
    writes = [op for op in p.ops if op.action != "delete"]
    if key_field != "Id" and len(writes) > bulk_threshold:
        out += _bulk_upsert(sf, obj, key_field, writes, bulk_wait)
    else:
        for part in w.chunked(writes, COMPOSITE):
            if key_field == "Id":
                recs = [
                    {"attributes": {"type": obj}, "Id": op.target_id, **_fields(op)} for op in part
                ]
                out += _call(
                    sf,
                    part,
                    "composite/sobjects",
                    "PATCH",
                    json={"allOrNone": False, "records": recs},
                )
            else:
                recs = [
                    {"attributes": {"type": obj}, key_field: op.key, **_fields(op)} for op in part
                ]
                out += _call(
                    sf,
                    part,
                    f"composite/sobjects/{obj}/{key_field}",
                    "PATCH",
                    json={"allOrNone": False, "records": recs},
                )
    for part in w.chunked(p.by_action("delete"), COMPOSITE):
        ids = ",".join(str(op.target_id) for op in part)
        out += _call(
            sf, part, "composite/sobjects", "DELETE", params={"ids": ids, "allOrNone": "false"}
        )
    return out


def _fields(op: w.WriteOp) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in op.fields.items()}


def _bulk_upsert(
    sf: Salesforce, obj: str, key_field: str, ops: Sequence[w.WriteOp], wait: float
) -> list[w.Outcome]:
    cols = sorted({k for op in ops for k in op.fields})
    records = [{key_field: op.key, **{c: _csv(op.fields.get(c)) for c in cols}} for op in ops]
    job = getattr(sf.bulk2, obj)
    try:
        summaries = job.upsert(records=records, external_id_field=key_field, wait=wait)
        failed: dict[str, str] = {}
        for s in summaries:
            if int(s.get("numberRecordsFailed", 0)):
                text = job.get_failed_records(s["job_id"])
                for row in csv.DictReader(io.StringIO(text)):
                    failed[str(row.get(key_field))] = str(row.get("sf__Error", ""))
    except SalesforceError as exc:
        err = translate(exc)
        if not isinstance(err, TransientError):
            raise err from None
        return [w.Outcome(op.key, op.action, False, None, str(err), True) for op in ops]
    out = []
    for op in ops:
        if op.key in failed:
            msg = failed[op.key]
            retry = any(code in msg for code in RETRYABLE)
            out.append(w.Outcome(op.key, op.action, False, op.target_id, msg, retry))
        else:
            out.append(w.Outcome(op.key, op.action, True, op.target_id))
    return out


def _csv(v: Any) -> str:
    if v is None:
        return "#N/A"  # Bulk API: clear the field
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(_jsonable(v))


def sync(
    sf: Salesforce,
    obj: str,
    key_field: str,
    desired: Mapping[str, Mapping[str, Any]],
    mode: w.WriteMode = "upsert",
    *,
    dry_run: bool = False,
    scope: Collection[str] | None = None,
    bulk_threshold: int = 2000,
    bulk_wait: float = 5.0,
) -> w.WriteResult:
    """Make ``obj`` match ``desired`` (key → fields) for the named fields.

    ``key_field`` is an external id field (creates allowed) or ``Id`` (updates and deletes
    of records Kizuna read, e.g. a computed score written back to Contacts). ``mirror``
    deletes keys in ``scope`` that are not desired.
    """
    if key_field == "Id" and mode == "upsert":
        mode = "update_only"  # a record without an external id cannot be created by key
    fields = sorted({f for v in desired.values() for f in v})
    target = f"salesforce {obj}"

    def make(keys: Collection[str]) -> w.WritePlan:
        have = current(sf, obj, key_field, sorted(keys), fields)
        want = {k: v for k, v in desired.items() if k in keys}
        return w.plan(target, want, have, mode)

    return w.run(
        make(sorted(set(desired) | set(scope or ()))),
        lambda p: execute(
            sf, obj, key_field, p, bulk_threshold=bulk_threshold, bulk_wait=bulk_wait
        ),
        dry=dry_run,
        replan=make,
    )


def task(
    subject: str,
    *,
    who_id: str | None = None,
    what_id: str | None = None,
    owner_id: str | None = None,
    due: date | None = None,
    description: str | None = None,
    status: str = "Not Started",
) -> dict[str, Any]:
    """Fields of a follow-up Task; write it with ``sync(sf, "Task", "Kizuna_Key__c", ...)``."""
    fields: dict[str, Any] = {"Subject": subject, "Status": status}
    for k, v in (
        ("WhoId", who_id),
        ("WhatId", what_id),
        ("OwnerId", owner_id),
        ("ActivityDate", due.isoformat() if due else None),
        ("Description", description),
    ):
        if v is not None:
            fields[k] = v
    return fields


def campaign_members(
    sf: Salesforce,
    campaign_id: str,
    who_ids: Collection[str],
    mode: w.WriteMode = "upsert",
    *,
    status: str | None = None,
    dry_run: bool = False,
) -> w.WriteResult:
    """Add contacts/leads (by id) to a campaign; ``mirror`` also removes the others."""
    target = f"salesforce Campaign {campaign_id}"

    def have() -> dict[str, w.Current]:
        q = (
            "SELECT Id, ContactId, LeadId, Status FROM CampaignMember "
            f"WHERE CampaignId = {soql_in([campaign_id])}"
        )
        try:
            rows = list(sf.query_all_iter(q))
        except SalesforceError as exc:
            raise translate(exc) from None
        return {
            str(r.get("ContactId") or r.get("LeadId")): w.Current(
                str(r["Id"]), {"Status": r.get("Status")}
            )
            for r in rows
        }

    def make(keys: Collection[str]) -> w.WritePlan:
        want = {k: ({"Status": status} if status else {}) for k in who_ids if k in keys}
        cur = have()
        if mode != "mirror":
            cur = {k: v for k, v in cur.items() if k in keys}
        return w.plan(target, want, cur, mode)

    def execute_members(p: w.WritePlan) -> list[w.Outcome]:
        out: list[w.Outcome] = []
        creates = p.by_action("create")
        for part in w.chunked(creates, COMPOSITE):
            recs = []
            for op in part:
                who = "LeadId" if op.key.startswith(LEAD_PREFIX) else "ContactId"
                recs.append(
                    {
                        "attributes": {"type": "CampaignMember"},
                        "CampaignId": campaign_id,
                        who: op.key,
                        **op.fields,
                    }
                )
            out += _call(
                sf, part, "composite/sobjects", "POST", json={"allOrNone": False, "records": recs}
            )
        rest = w.WritePlan(p.target, p.mode, tuple(op for op in p.ops if op.action != "create"))
        return out + execute(sf, "CampaignMember", "Id", rest)

    return w.run(make(set(who_ids)), execute_members, dry=dry_run, replan=make)
