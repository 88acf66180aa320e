"""Golden records as rows to export: one per customer and one per company, with public ids.

A golden record is a view over a cluster's records, never a stored overwrite: people through
the workspace's survivorship rules (``survivorship.golden``), companies by the most frequent
value of each field among their records (ties: the smallest), so the outcome is the same
whatever order the records arrived in.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from warehouse import schema as t
from warehouse.identity import survivorship
from warehouse.identity.crosswalk import public_ids
from warehouse.write.upsert import chunks

CUSTOMER_FIELDS = (
    "customer_id",
    "full_name",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "primary_email",
    "emails",
    "phones",
    "title",
    "department",
    "organization_id",
    "records",
)
ORG_FIELDS = (
    "organization_id",
    "name",
    "domain",
    "corporate_number",
    "industry",
    "address",
    "phone",
    "records",
)
_BATCH = 500


def _groups(ids: dict[int, str]) -> list[tuple[str, list[int]]]:
    by: dict[str, list[int]] = defaultdict(list)
    for rid, cid in ids.items():
        by[cid].append(rid)
    return sorted((cid, sorted(m)) for cid, m in by.items())


def customers(
    conn: Connection,
    rules: survivorship.SurvivorshipRules | None = None,
    visible: set[int] | None = None,
) -> Iterator[dict[str, Any]]:
    """One golden row per live customer, ordered by customer id; with ``visible`` (person
    record ids, from ``warehouse.access.scope``), only customers with a record in it."""
    rules = rules or survivorship.SurvivorshipRules()
    people = public_ids(conn, "person")
    orgs = public_ids(conn, "organization")
    pe, pp = t.PersonEmail, t.PersonPhone
    groups = _groups(people)
    if visible is not None:
        groups = [g for g in groups if not visible.isdisjoint(g[1])]
    for batch in chunks(groups, _BATCH):
        rids = [r for _, m in batch for r in m]
        cands = survivorship.candidates(conn, rids)
        emails: dict[int, list[str]] = defaultdict(list)
        phones: dict[int, list[str]] = defaultdict(list)
        for part in chunks(rids, 900):
            for pid, e in conn.execute(
                select(pe.person_id, pe.email).where(pe.person_id.in_(part))
            ):
                emails[int(pid)].append(str(e))
            for pid, ph in conn.execute(
                select(pp.person_id, pp.phone).where(pp.person_id.in_(part))
            ):
                phones[int(pid)].append(str(ph))
        for cid, members in batch:
            gold = survivorship.golden([cands[r] for r in members if r in cands], rules)
            row: dict[str, Any] = {"customer_id": cid}
            for f in CUSTOMER_FIELDS[1:]:
                row[f] = gold.get(f, {}).get("value")
            org = row["organization_id"]
            row["organization_id"] = orgs.get(int(org)) if org is not None else None
            row["emails"] = ";".join(sorted({e for r in members for e in emails[r]}))
            row["phones"] = ";".join(sorted({p for r in members for p in phones[r]}))
            row["records"] = len(members)
            yield row


def organizations(conn: Connection) -> Iterator[dict[str, Any]]:
    """One golden row per live company, ordered by organization id."""
    orgs = public_ids(conn, "organization")
    o = t.table(t.Organization)
    cols = [c for c in ORG_FIELDS[1:-1]]
    for batch in chunks(_groups(orgs), _BATCH):
        rids = [r for _, m in batch for r in m]
        vals: dict[int, Any] = {}
        for part in chunks(rids, 900):
            for row in conn.execute(
                select(o.c.id, *[o.c[c] for c in cols]).where(o.c.id.in_(part))
            ):
                vals[int(row[0])] = row[1:]
        for cid, members in batch:
            out: dict[str, Any] = {"organization_id": cid}
            for i, c in enumerate(cols):
                seen = Counter(vals[r][i] for r in members if r in vals and vals[r][i])
                out[c] = min(seen, key=lambda v: (-seen[v], str(v))) if seen else None
            out["records"] = len(members)
            yield out
