"""Writing to a CRM, the part the three CRMs share: plans, outcomes, dry runs and retries.

A write is planned before it is made. The plan compares what Kizuna wants (``desired``: key →
fields) with what the CRM holds now (``current``, read from the CRM itself, by the same
deterministic key), so a rerun, a retry or a crash-and-restart plans nothing for what
already landed: the CRM is the ledger of its own writes (DESIGN rule 6). Every op carries its
key — an external id, a ``campaign:person`` pair, a kintone key field value — so a retried
create is an upsert on that key and never a duplicate.

Modes:

- ``upsert``: create what is missing, update what differs;
- ``update_only``: update what exists and differs; missing keys are reported as skipped;
- ``mirror``: ``upsert`` plus deleting what the CRM has (within the written scope) and we do
  not want.

``dry_run`` reports would-create/update/delete without a single write. Each CRM module
executes a plan and returns per-record outcomes; :func:`run` retries only the failed and
retryable records (re-planning from fresh CRM state where the CRM uses revisions).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

WriteMode = Literal["upsert", "update_only", "mirror"]
Action = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Current:
    """A record as the CRM holds it now."""

    target_id: str
    fields: Mapping[str, Any]
    revision: str | None = None


@dataclass(frozen=True)
class WriteOp:
    action: Action
    key: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    target_id: str | None = None
    revision: str | None = None


@dataclass(frozen=True)
class WritePlan:
    target: str
    mode: WriteMode
    ops: tuple[WriteOp, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    """``update_only`` keys the CRM does not have."""

    @property
    def is_noop(self) -> bool:
        return not self.ops

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "delete": 0}
        for op in self.ops:
            out[op.action] += 1
        return {**out, "unchanged": len(self.unchanged), "skipped": len(self.skipped)}

    def only(self, keys: Collection[str]) -> WritePlan:
        return replace(self, ops=tuple(op for op in self.ops if op.key in keys), unchanged=())

    def by_action(self, action: Action) -> list[WriteOp]:
        return [op for op in self.ops if op.action == action]


@dataclass(frozen=True)
class Outcome:
    key: str
    action: Action
    ok: bool
    target_id: str | None = None
    error: str | None = None
    retryable: bool = False


@dataclass
class WriteResult:
    target: str
    dry_run: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    unchanged: int = 0
    skipped: int = 0
    attempts: int = 1

    def _n(self, action: Action) -> int:
        return sum(1 for o in self.outcomes if o.ok and o.action == action)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def counts(self) -> dict[str, int]:
        prefix = "would_" if self.dry_run else ""
        return {
            f"{prefix}create": self._n("create"),
            f"{prefix}update": self._n("update"),
            f"{prefix}delete": self._n("delete"),
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": len(self.failed),
        }

    def merge(self, later: WriteResult) -> WriteResult:
        """Outcomes of a retry replace those of the same keys."""
        keep = {o.key: o for o in self.outcomes}
        keep.update({o.key: o for o in later.outcomes})
        return WriteResult(
            target=self.target,
            dry_run=self.dry_run,
            outcomes=list(keep.values()),
            unchanged=self.unchanged,
            skipped=self.skipped,
            attempts=self.attempts + later.attempts,
        )


def same_value(a: Any, b: Any) -> bool:
    """CRMs echo values in their own types: 1500.0 for "1500", "" for None, "true" for True."""
    if a in (None, "", []) and b in (None, "", []):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return str(a).lower() == str(b).lower()
    if isinstance(a, list) or isinstance(b, list):
        return sorted(map(str, a if isinstance(a, list) else [a])) == sorted(
            map(str, b if isinstance(b, list) else [b])
        )
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except (InvalidOperation, ValueError):
        return str(a) == str(b)


def changed_fields(want: Mapping[str, Any], have: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in want.items() if not same_value(v, have.get(k))}


def plan(
    target: str,
    desired: Mapping[str, Mapping[str, Any]],
    current: Mapping[str, Current],
    mode: WriteMode,
) -> WritePlan:
    """What to do so the CRM matches ``desired`` (only the fields named there)."""
    ops: list[WriteOp] = []
    unchanged: list[str] = []
    skipped: list[str] = []
    for key in sorted(desired):
        want = desired[key]
        have = current.get(key)
        if have is None:
            if mode == "update_only":
                skipped.append(key)
            else:
                ops.append(WriteOp("create", key, dict(want)))
            continue
        diff = changed_fields(want, have.fields)
        if diff:
            ops.append(WriteOp("update", key, diff, have.target_id, have.revision))
        else:
            unchanged.append(key)
    if mode == "mirror":
        for key in sorted(set(current) - set(desired)):
            have = current[key]
            ops.append(WriteOp("delete", key, {}, have.target_id, have.revision))
    return WritePlan(target, mode, tuple(ops), tuple(unchanged), tuple(skipped))


def dry_run(p: WritePlan) -> WriteResult:
    return WriteResult(
        target=p.target,
        dry_run=True,
        outcomes=[Outcome(op.key, op.action, True, op.target_id) for op in p.ops],
        unchanged=len(p.unchanged),
        skipped=len(p.skipped),
        attempts=0,
    )


Execute = Callable[[WritePlan], list[Outcome]]
Replan = Callable[[Collection[str]], WritePlan]


def run(
    p: WritePlan,
    execute: Execute,
    *,
    dry: bool = False,
    attempts: int = 3,
    replan: Replan | None = None,
) -> WriteResult:
    """Execute a plan; retry only failed, retryable records (``replan``: from fresh state)."""
    if dry:
        return dry_run(p)
    result = WriteResult(
        target=p.target,
        outcomes=execute(p) if p.ops else [],
        unchanged=len(p.unchanged),
        skipped=len(p.skipped),
    )
    for _ in range(attempts - 1):
        again = {o.key for o in result.failed if o.retryable}
        if not again:
            break
        nxt = replan(again) if replan is not None else p.only(again)
        later = WriteResult(target=p.target, outcomes=execute(nxt) if nxt.ops else [])
        # A replan may find the record already as wanted: that key succeeded after all.
        done = {op.key for op in nxt.ops}
        for key in again - done:
            prev = next(o for o in result.outcomes if o.key == key)
            later.outcomes.append(replace(prev, ok=True, error=None, retryable=False))
        result = result.merge(later)
    return result


def chunked(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
