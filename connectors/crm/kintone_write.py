"""Writing kintone records: upsert by a key field, with revision checks.

The current state is read by the key field (``key in ("a", "b")``, with ``$id`` and
``$revision``), so every update carries the revision it was planned against: if someone edited
the record in between, kintone answers 409 ``GAIA_CO02`` and that record is re-planned from
fresh state rather than overwritten blindly. kintone writes are all-or-nothing per request (up
to 100 records), so a batch that fails on one record is retried one record at a time to find
it and land the others.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import httpx

from connectors.crm import write as w
from connectors.crm.kintone import AppSpec, Kintone, error_code, quote, value
from kizuna.errors import KizunaError

BATCH = 100
CONFLICT = "GAIA_CO02"


def _plain(v: Any) -> Any:
    if isinstance(v, list) and v and isinstance(v[0], Mapping):
        return [x.get("code") for x in v]
    return v


def current(
    kt: Kintone, spec: AppSpec, key_field: str, keys: Sequence[str], fields: Sequence[str]
) -> dict[str, w.Current]:
    out: dict[str, w.Current] = {}
    want = list(dict.fromkeys(["$id", "$revision", key_field, *fields]))
    for part in w.chunked(sorted(set(keys)), BATCH):
        cond = f"{key_field} in ({', '.join(quote(k) for k in part)})"
        q = f"{cond} and ({spec.where})" if spec.where else cond
        for rec in kt.records(spec, f"{q} order by $id asc limit {BATCH}", want):
            key = str(value(rec, key_field))
            out[key] = w.Current(
                target_id=str(value(rec, "$id")),
                fields={f: _plain(value(rec, f)) for f in fields},
                revision=str(value(rec, "$revision")),
            )
    return out


def _encode(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: {"value": v} for k, v in fields.items()}


def _send(kt: Kintone, spec: AppSpec, method: str, body: dict[str, Any]) -> httpx.Response:
    return kt.call(
        method,
        spec.path("records.json"),
        f"kintone app {spec.app} write",
        accept=(400, 404, 409),
        json={"app": spec.app, **body},
    )


def _failure(resp: httpx.Response) -> tuple[str, bool]:
    code, msg = error_code(resp)
    return f"{code} {msg}".strip(), code == CONFLICT


def execute(kt: Kintone, spec: AppSpec, key_field: str, p: w.WritePlan) -> list[w.Outcome]:
    out: list[w.Outcome] = []
    creates, updates, deletes = p.by_action("create"), p.by_action("update"), p.by_action("delete")
    for part in w.chunked(creates, BATCH):
        out += _batch(kt, spec, key_field, "POST", part)
    for part in w.chunked(updates, BATCH):
        out += _batch(kt, spec, key_field, "PUT", part)
    for part in w.chunked(deletes, BATCH):
        out += _batch(kt, spec, key_field, "DELETE", part)
    return out


def _body(method: str, key_field: str, ops: list[w.WriteOp]) -> dict[str, Any]:
    if method == "POST":
        return {"records": [_encode({**op.fields, key_field: op.key}) for op in ops]}
    if method == "PUT":
        recs = []
        for op in ops:
            item: dict[str, Any] = {"record": _encode(op.fields)}
            if key_field == "$id" or op.target_id:
                item["id"] = op.target_id
            else:
                item["updateKey"] = {"field": key_field, "value": op.key}
            if op.revision is not None:
                item["revision"] = op.revision
            recs.append(item)
        return {"records": recs}
    return {
        "ids": [op.target_id for op in ops],
        "revisions": [op.revision if op.revision is not None else -1 for op in ops],
    }


def _batch(
    kt: Kintone, spec: AppSpec, key_field: str, method: str, ops: list[w.WriteOp]
) -> list[w.Outcome]:
    try:
        resp = _send(kt, spec, method, _body(method, key_field, ops))
    except KizunaError as exc:
        return [w.Outcome(op.key, op.action, False, op.target_id, str(exc), True) for op in ops]
    if resp.status_code < 300:
        body = resp.json()
        ids = body.get("ids") or [r.get("id") for r in body.get("records", [])]
        return [
            w.Outcome(op.key, op.action, True, str(ids[i]) if i < len(ids) else op.target_id)
            for i, op in enumerate(ops)
        ]
    if len(ops) > 1:
        # All-or-nothing: find the bad record(s) one by one so the rest land.
        return [o for op in ops for o in _batch(kt, spec, key_field, method, [op])]
    error, conflict = _failure(resp)
    op = ops[0]
    if method == "DELETE" and resp.status_code == 404:
        return [w.Outcome(op.key, op.action, True, op.target_id)]  # already gone
    return [w.Outcome(op.key, op.action, False, op.target_id, error, retryable=conflict)]


def sync(
    kt: Kintone,
    spec: AppSpec,
    key_field: str,
    desired: Mapping[str, Mapping[str, Any]],
    mode: w.WriteMode = "upsert",
    *,
    dry_run: bool = False,
    scope: Collection[str] | None = None,
) -> w.WriteResult:
    """Make the app match ``desired`` (key → {field code: value}) for the named fields.

    ``mirror`` deletes records whose key is in ``scope`` (the keys Kizuna manages) but not in
    ``desired``; kintone apps hold hand-made records too, so nothing outside it is touched.
    """
    fields = sorted({f for v in desired.values() for f in v})
    keys = sorted(set(desired) | set(scope or ()))
    target = f"kintone app {spec.app}"

    def make(keys_: Collection[str]) -> w.WritePlan:
        have = current(kt, spec, key_field, sorted(keys_), fields)
        want = {k: v for k, v in desired.items() if k in keys_}
        return w.plan(target, want, have, mode)

    return w.run(
        make(keys),
        lambda p: execute(kt, spec, key_field, p),
        dry=dry_run,
        replan=make,
    )
