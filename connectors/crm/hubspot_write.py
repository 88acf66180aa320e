"""Writing to HubSpot: property upserts by a unique property, tasks, list membership.

Records are keyed by a unique property (``email`` for contacts, ``domain``-like custom keys,
``kizuna_key`` — a custom property with unique values — for the tasks Kizuna creates) and
written with ``batch/upsert`` and ``idProperty``, so a retried create updates what the first
attempt made. Batch answers are 207 multi-status when some inputs fail; ``errors[].context.ids``
names them, and only those are retried (and only when the category is transient). List
membership is idempotent on HubSpot's side too (adding a member twice is ignored).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from connectors.crm import write as w
from connectors.crm.hubspot import HubSpot
from kizuna.errors import KizunaError, TransientError

BATCH = 100
LIST_BATCH = 100
RETRYABLE = {"RATE_LIMITS", "LOCKED", "INTERNAL_ERROR", "TIMEOUT"}


def current(
    hs: HubSpot, obj: str, id_property: str, keys: Sequence[str], properties: Sequence[str]
) -> dict[str, w.Current]:
    out: dict[str, w.Current] = {}
    for part in w.chunked(sorted(set(keys)), BATCH):
        body: dict[str, Any] = {
            "properties": list(dict.fromkeys([*properties, id_property])),
            "inputs": [{"id": k} for k in part],
        }
        if id_property != "hs_object_id":
            body["idProperty"] = id_property
        got = hs.call("POST", f"/crm/v3/objects/{obj}/batch/read", f"hubspot {obj} read", json=body)
        for res in got.get("results", []):
            props = res.get("properties") or {}
            key = str(res["id"]) if id_property == "hs_object_id" else str(props.get(id_property))
            out[key] = w.Current(str(res["id"]), {p: props.get(p) for p in properties})
    return out


def _errors(body: Mapping[str, Any]) -> dict[str, tuple[str, bool]]:
    """Failed input ids → (message, retryable) from a 207 multi-status answer."""
    out: dict[str, tuple[str, bool]] = {}
    for err in body.get("errors") or []:
        cat = str(err.get("category", ""))
        msg = f"{cat} {err.get('message', '')}".strip()
        for i in (err.get("context") or {}).get("ids") or []:
            out[str(i)] = (msg, cat in RETRYABLE)
    return out


def _batch(
    hs: HubSpot, obj: str, path: str, ops: Sequence[w.WriteOp], body: dict[str, Any], by: str
) -> list[w.Outcome]:
    try:
        got = hs.call("POST", f"/crm/v3/objects/{obj}/{path}", f"hubspot {obj} {path}", json=body)
    except TransientError as exc:
        return [w.Outcome(op.key, op.action, False, op.target_id, str(exc), True) for op in ops]
    failed = _errors(got)
    ids: dict[str, str] = {}
    for res in got.get("results", []):
        props = res.get("properties") or {}
        ident = str(res["id"]) if by == "id" else str(props.get(by, ""))
        ids[ident] = str(res["id"])
    out = []
    for op in ops:
        ident = str(op.target_id) if by == "id" else op.key
        if ident in failed:
            msg, retry = failed[ident]
            out.append(w.Outcome(op.key, op.action, False, op.target_id, msg, retry))
        else:
            out.append(w.Outcome(op.key, op.action, True, ids.get(ident, op.target_id)))
    return out


def execute(hs: HubSpot, obj: str, id_property: str, p: w.WritePlan) -> list[w.Outcome]:
    out: list[w.Outcome] = []
    for part in w.chunked(p.by_action("create"), BATCH):
        inputs = [
            {"id": op.key, "idProperty": id_property, "properties": dict(op.fields)} for op in part
        ]
        out += _batch(hs, obj, "batch/upsert", part, {"inputs": inputs}, id_property)
    for part in w.chunked(p.by_action("update"), BATCH):
        inputs = [{"id": op.target_id, "properties": dict(op.fields)} for op in part]
        out += _batch(hs, obj, "batch/update", part, {"inputs": inputs}, "id")
    for part in w.chunked(p.by_action("delete"), BATCH):
        try:
            hs.call(
                "POST",
                f"/crm/v3/objects/{obj}/batch/archive",
                f"hubspot {obj} archive",
                json={"inputs": [{"id": op.target_id} for op in part]},
            )
            out += [w.Outcome(op.key, "delete", True, op.target_id) for op in part]
        except TransientError as exc:
            out += [w.Outcome(op.key, "delete", False, op.target_id, str(exc), True) for op in part]
    return out


def sync(
    hs: HubSpot,
    obj: str,
    id_property: str,
    desired: Mapping[str, Mapping[str, Any]],
    mode: w.WriteMode = "upsert",
    *,
    dry_run: bool = False,
    scope: Collection[str] | None = None,
) -> w.WriteResult:
    """Make ``obj`` match ``desired`` (unique key → properties) for the named properties."""
    props = sorted({f for v in desired.values() for f in v})
    target = f"hubspot {obj}"

    def make(keys: Collection[str]) -> w.WritePlan:
        have = current(hs, obj, id_property, sorted(keys), props)
        return w.plan(target, {k: v for k, v in desired.items() if k in keys}, have, mode)

    return w.run(
        make(sorted(set(desired) | set(scope or ()))),
        lambda p: execute(hs, obj, id_property, p),
        dry=dry_run,
        replan=make,
    )


def tasks(
    hs: HubSpot,
    desired: Mapping[str, Mapping[str, Any]],
    contacts: Mapping[str, str],
    *,
    key_property: str = "kizuna_key",
    dry_run: bool = False,
) -> w.WriteResult:
    """Follow-up tasks keyed by ``key_property``, each associated with its contact (by id)."""
    res = sync(hs, "tasks", key_property, desired, dry_run=dry_run)
    if dry_run:
        return res
    have = current(hs, "tasks", key_property, sorted(contacts), [])
    for key, contact_id in contacts.items():
        task = have.get(key)
        if task is None:
            continue
        # PUT of the default association is idempotent: a rerun links nothing twice.
        hs.call(
            "PUT",
            f"/crm/v4/objects/tasks/{task.target_id}/associations/default/contacts/{contact_id}",
            "hubspot task association",
        )
    return res


def list_members(
    hs: HubSpot,
    list_id: str,
    record_ids: Collection[str],
    mode: w.WriteMode = "upsert",
    *,
    dry_run: bool = False,
) -> w.WriteResult:
    """Make a MANUAL/SNAPSHOT list hold ``record_ids`` (``mirror`` also removes the others)."""
    target = f"hubspot list {list_id}"

    def members() -> dict[str, w.Current]:
        out: dict[str, w.Current] = {}
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 250, **({"after": after} if after else {})}
            body = hs.call(
                "GET", f"/crm/v3/lists/{list_id}/memberships", "hubspot list", params=params
            )
            for m in body.get("results", []):
                out[str(m["recordId"])] = w.Current(str(m["recordId"]), {})
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return out

    def make(keys: Collection[str]) -> w.WritePlan:
        have = members()
        if mode != "mirror":
            have = {k: v for k, v in have.items() if k in keys}
        return w.plan(target, {k: {} for k in record_ids if k in keys}, have, mode)

    def execute_members(p: w.WritePlan) -> list[w.Outcome]:
        out: list[w.Outcome] = []
        steps: tuple[tuple[w.Action, str], ...] = (("create", "add"), ("delete", "remove"))
        for action, op_name in steps:
            for part in w.chunked(p.by_action(action), LIST_BATCH):
                try:
                    body = hs.call(
                        "PUT",
                        f"/crm/v3/lists/{list_id}/memberships/{op_name}",
                        f"hubspot list {op_name}",
                        json=[op.key for op in part],
                    )
                except KizunaError as exc:
                    if not isinstance(exc, TransientError):
                        raise
                    out += [
                        w.Outcome(op.key, op.action, False, None, str(exc), True) for op in part
                    ]
                    continue
                missing = {str(i) for i in body.get("recordIdsMissing") or []}
                for op in part:
                    if op.key in missing:
                        out.append(
                            w.Outcome(op.key, op.action, False, None, "record does not exist")
                        )
                    else:
                        out.append(w.Outcome(op.key, op.action, True, op.key))
        return out

    return w.run(make(set(record_ids)), execute_members, dry=dry_run, replan=make)
