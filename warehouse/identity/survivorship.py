"""Golden records: which member's value each field of a resolved customer shows, and why.

Every field is chosen by an ordered list of rules (``source_priority``: the connector an admin
trusts most for that field; ``most_recent``: the member a source saw last; ``most_complete``:
the member with the most filled fields), ties broken by the smallest record key (a digest of
the record's connector, stream and source id), never by the row id: row ids follow the order
rows were written, so a shuffled or rebuilt input would otherwise pick other values. Each golden field keeps the source and row it came from and the rule that
decided, so the 360 view can say where a title or a phone number came from.

A member row's source is the live source row that saw it most recently. "Seen" is the start
of the stream run that last changed the record (``source_record.last_seen``, written once per
run by the engine), so every record of one run is equally recent whatever page it landed on;
between sources, the stream run that started later is the more recent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from warehouse import schema as t
from warehouse.identity import graph as graph
from warehouse.write.upsert import chunks

FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "full_name",
    "primary_email",
    "title",
    "department",
    "gender",
    "birth_date",
    "organization_id",
    "owner_id",
    "lifecycle_stage",
)
RULES = ("source_priority", "most_recent", "most_complete")


@dataclass(frozen=True)
class SurvivorshipRules:
    rules: tuple[str, ...] = RULES
    source_priority: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """field (or ``*`` for every field) → connector names, most trusted first."""
    field_rules: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """field → its own rule order, overriding ``rules``."""


@dataclass
class Candidate:
    record_id: int
    values: dict[str, Any]
    source: str
    seen: datetime | None
    filled: int
    key: str = ""
    """The record key (``P-…``): the last, write-order-free tie-break."""


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def candidates(conn: Connection, record_ids: Iterable[int]) -> dict[int, Candidate]:
    """Member rows with their most recent live source and how complete they are."""
    p = t.table(t.Person)
    sr = t.SourceRecord
    ids = sorted(set(record_ids))
    out: dict[int, Candidate] = {}
    for part in chunks(ids, 900):
        for row in conn.execute(
            select(p.c.id, p.c.record_key, *[p.c[f] for f in FIELDS]).where(p.c.id.in_(part))
        ).mappings():
            vals = {f: row[f] for f in FIELDS}
            rid = int(row["id"])
            out[rid] = Candidate(
                rid,
                vals,
                "",
                None,
                sum(v not in (None, "") for v in vals.values()),
                row["record_key"] or f"~{rid:020d}",
            )
        for eid, connector, stream, seen in conn.execute(
            select(sr.entity_id, sr.connector, sr.stream, sr.last_seen).where(
                sr.entity == "person", sr.entity_id.in_(part), sr.deleted_at.is_(None)
            )
        ):
            c = out.get(int(eid)) if eid is not None else None
            src = f"{connector}/{stream}"
            # Newest first; two lineage rows seen at once: the smaller source name, so the
            # answer never depends on the order the database returns them in.
            if c is not None and (c.seen is None or (seen, c.source) > (c.seen, src)):
                c.seen, c.source = seen, src
    return out


def _key(rule: str, c: Candidate, fld: str, rules: SurvivorshipRules) -> Any:
    if rule == "source_priority":
        order = list(rules.source_priority.get(fld) or rules.source_priority.get("*") or ())
        conn = c.source.split("/", 1)[0]
        return order.index(conn) if conn in order else len(order)
    if rule == "most_recent":
        return -(c.seen.timestamp()) if c.seen else 0.0
    if rule == "most_complete":
        return -c.filled
    raise ValueError(f"unknown survivorship rule {rule!r}")


def golden(members: Sequence[Candidate], rules: SurvivorshipRules) -> dict[str, Any]:
    """field → {value, source, record_id, rule} for one cluster."""
    out: dict[str, Any] = {}
    for fld in FIELDS:
        order = tuple(rules.field_rules.get(fld) or rules.rules)
        have = [c for c in members if c.values.get(fld) not in (None, "")]
        if not have:
            continue
        ranked = sorted(have, key=lambda c: (*(_key(r, c, fld, rules) for r in order), c.key))
        win = ranked[0]
        decided = "only value"
        if len(ranked) > 1:
            nxt = ranked[1]
            decided = next(
                (r for r in order if _key(r, win, fld, rules) != _key(r, nxt, fld, rules)),
                "smallest record key",
            )
        out[fld] = {
            "value": _jsonable(win.values[fld]),
            "source": win.source,
            "record_id": win.record_id,
            "rule": decided,
        }
    return out


def refresh(
    conn: Connection, cluster_ids: Iterable[int], rules: SurvivorshipRules, entity: str = "person"
) -> int:
    """Recompute the golden record of the given clusters; returns how many were written."""
    wanted = sorted(set(cluster_ids))
    if not wanted:
        return 0
    by_cluster: dict[int, list[int]] = {}
    for rid, cid in graph.members_of(conn, entity, wanted).items():
        by_cluster.setdefault(cid, []).append(rid)
    cands = candidates(conn, [r for m in by_cluster.values() for r in m])
    rows = [
        {"b_id": cid, "b_golden": golden([cands[r] for r in m if r in cands], rules)}
        for cid, m in sorted(by_cluster.items())
    ]
    c = graph.C
    for part in chunks(rows, 2000):
        conn.execute(
            update(c)
            .where(c.c.entity == entity, c.c.id == bindparam("b_id"))
            .values(golden=bindparam("b_golden")),
            list(part),
        )
    return len(rows)
