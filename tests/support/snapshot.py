"""Every column of every table, comparable between two warehouses filled in different orders.

Surrogate ids differ between a clean run and a crashed-and-rerun one, so a row is compared
by its content: each reference to another row (a foreign key, ``source_record.entity_id``,
an identity record or cluster id) is replaced by that row's own content, recursively.
Bookkeeping timestamps (when a row was written, not what it says) become "set or not", and a
golden field chosen by such a time (survivorship past source priority) only by being there;
run ids and run records, leases and the Alembic version are left out. Everything else is
compared as it is stored.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import numpy as np
from sqlalchemy import Engine, Table, select

from warehouse.migrations.env_models import metadata

SKIP_TABLES = {"sync_run", "flow_run", "lease", "alembic_version"}
BOOKKEEPING_TIMES = {
    "created_at",
    "updated_at",
    "first_seen",
    "last_seen",
    "started_at",
    "finished_at",
    "joined_at",
    "merged_at",
    "watermark",
    "full_run_at",
    "resolved_at",
    "deleted_at",
    "done_at",
    "recorded_at",
    "opened_at",
    "sent_at",
    "entered_at",
    "exited_at",
}
"""Written from the clock at commit time: compared as present/absent only."""
SKIP_COLUMNS = {"run_id", "last_run_id", "stats", "detail", "attempts"}
"""Which run wrote a row, run statistics, and ledger notes that name the run."""
ENTITY_TABLE = {
    "organization": "organization",
    "person": "person",
    "deal": "deal",
    "activity": "activity",
    "order": "purchase_order",
}
IDENTITY_REFS = {"record_id", "a_id", "b_id", "alias_id"}

Snapshot = dict[str, Counter[str]]


class _Db:
    def __init__(self, engine: Engine) -> None:
        self.tables = [t for t in metadata().sorted_tables if t.name not in SKIP_TABLES]
        self.rows: dict[str, list[dict[str, Any]]] = {}
        with engine.connect() as conn:
            for t in self.tables:
                self.rows[t.name] = [dict(r._mapping) for r in conn.execute(select(t))]
        self.by_id = {
            name: {r["id"]: r for r in rows if "id" in r}
            for name, rows in self.rows.items()
            if name != "identity_cluster"
        }
        self.members: dict[tuple[str, Any], list[Any]] = defaultdict(list)
        for r in self.rows.get("identity_member", []):
            self.members[(r["entity"], r["cluster_id"])].append(r["record_id"])
        self.matches = {r["id"]: r for r in self.rows.get("identity_match", [])}
        self.memo: dict[tuple[str, Any], str] = {}

    def ref(self, table: str, key: Any, depth: int = 0) -> str:
        """The content of the row ``table`` / ``key`` stands for."""
        if key is None:
            return "null"
        memo_key = (table, key)
        if memo_key in self.memo:
            return self.memo[memo_key]
        row = self.by_id.get(table, {}).get(key)
        out = "missing" if row is None or depth > 6 else self.content(table, row, depth + 1)
        self.memo[memo_key] = out
        return out

    def cluster(self, entity: str, cluster_id: Any, depth: int) -> str:
        table = ENTITY_TABLE.get(entity, entity)
        members = sorted(self.ref(table, m, depth) for m in self.members[(entity, cluster_id)])
        return json.dumps(members, ensure_ascii=False)

    def content(self, table_name: str, row: dict[str, Any], depth: int = 0) -> str:
        table: Table = next(t for t in self.tables if t.name == table_name)
        out: dict[str, Any] = {}
        entity = row.get("entity")
        for col in table.columns:
            name, value = col.name, row[col.name]
            if name in SKIP_COLUMNS:
                continue
            if name == "id" and col.primary_key and table_name != "identity_cluster":
                continue
            if name in BOOKKEEPING_TIMES:
                out[name] = value is not None
            elif col.foreign_keys:
                fk = next(iter(col.foreign_keys))
                out[name] = self.ref(fk.column.table.name, value, depth)
            elif (table_name == "source_record" and name == "entity_id") or (
                table_name.startswith("identity_") and name in IDENTITY_REFS
            ):
                out[name] = self.ref(ENTITY_TABLE.get(str(entity), ""), value, depth)
            elif table_name.startswith("identity_") and name in ("cluster_id", "id"):
                out[name] = self.cluster(str(entity), value, depth)
            elif table_name == "identity_alias" and name == "match_id":
                m = self.matches.get(value)
                out[name] = None if m is None else self.content("identity_match", m, depth + 1)
            elif table_name == "identity_cluster" and name == "golden" and value:
                out[name] = self.golden(ENTITY_TABLE.get(str(entity), ""), value, depth)
            else:
                out[name] = value
        if "a_id" in out and "b_id" in out:  # a pair is unordered; ids ordered it by number
            out["a_id"], out["b_id"] = sorted((out["a_id"], out["b_id"]))
        return json.dumps(out, ensure_ascii=False, sort_keys=True, default=str)

    def golden(self, table_name: str, golden: dict[str, Any], depth: int) -> dict[str, Any]:
        """A golden record with the records it took each value from, and values that are
        references (``organization_id``, ``owner_id``), given by content."""
        table = next((t for t in self.tables if t.name == table_name), None)
        out: dict[str, Any] = {}
        for field, pick in golden.items():
            if not isinstance(pick, dict):
                out[field] = pick
                continue
            pick = dict(pick)
            if pick.get("rule") not in ("only value", "source_priority"):
                # Past source priority the winner is the member a source saw last
                # (``last_seen``, a bookkeeping time: streams syncing at once finish in any
                # order); the members themselves are compared in ``identity_member``.
                out[field] = {"rule": "by when seen"}
                continue
            if "record_id" in pick:
                pick["record_id"] = self.ref(table_name, pick["record_id"], depth)
            col = table.columns.get(field) if table is not None else None
            if col is not None and col.foreign_keys and "value" in pick:
                fk = next(iter(col.foreign_keys))
                pick["value"] = self.ref(fk.column.table.name, pick["value"], depth)
            out[field] = pick
        return out


def snapshot(engine: Engine) -> Snapshot:
    """Per table, the multiset of its rows' contents (the index's buckets as their keys:
    each pair's record given by its content)."""
    db = _Db(engine)
    out = {t.name: Counter(db.content(t.name, r) for r in db.rows[t.name]) for t in db.tables}
    if "identity_key" in out:
        out["identity_key"] = Counter(
            json.dumps([r["entity"], d, db.ref(ENTITY_TABLE.get(r["entity"], ""), rid)])
            for r in db.rows["identity_key"]
            for d, rid in np.frombuffer(r["pairs"], "<i8").reshape(-1, 2).tolist()
        )
    return out


def differences(a: Snapshot, b: Snapshot, limit: int = 3) -> list[str]:
    """Readable differences (empty when the two warehouses hold the same data)."""
    out: list[str] = []
    for name in sorted(set(a) | set(b)):
        only_a = a.get(name, Counter()) - b.get(name, Counter())
        only_b = b.get(name, Counter()) - a.get(name, Counter())
        if only_a or only_b:
            out.append(
                f"{name}: {sum(only_a.values())} rows only in the first, "
                f"{sum(only_b.values())} only in the second; e.g. "
                f"{list(only_a)[:limit]} vs {list(only_b)[:limit]}"
            )
    return out
