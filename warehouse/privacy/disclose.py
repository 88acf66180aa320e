"""Disclosing one customer (個人情報保護法 第33条 開示): everything held, as one document.

The document is plain JSON a person can read: the golden record and each source record
with its lineage (which file and row, which mailbox), addresses and phones, the messages and
meetings they took part in, consent evidence, suppression, the campaign ledger and plans,
segment history, deals and orders linked to them, the identity evidence that linked their
records, and quarantined entries that mention them. The caller adds what files hold
(``flows.cli.privacy``) and writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, insert, or_, select

from warehouse import schema as t
from warehouse.activation import ledger_schema as ls
from warehouse.activation import segment_schema as ss
from warehouse.identity import schema as ids_
from warehouse.identity import survivorship
from warehouse.privacy import redact
from warehouse.privacy.erase import Found
from warehouse.privacy.schema import PrivacyRequest
from warehouse.state import now
from warehouse.write.upsert import chunks

IN = 900
MAX_ACTIVITIES = 100_000
"""A bound on one document; a customer past it gets the newest ones and a note."""


def plain(v: Any) -> Any:
    """A value as JSON shows it (dates as ISO text, amounts as text)."""
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [plain(x) for x in v]
    return v


def _rows(conn: Connection, tb: Table, col: str, ids: Sequence[Any], *extra: Any) -> list[Any]:
    out: list[dict[str, Any]] = []
    for part in chunks(list(ids), IN):
        q = select(tb).where(tb.c[col].in_(list(part)), *extra)
        out.extend({k: plain(v) for k, v in r.items()} for r in conn.execute(q).mappings())
    return out


def document(conn: Connection, found: Found) -> dict[str, Any]:
    """Everything the warehouse holds about the customer."""
    ids = found.record_ids
    p = t.table(t.Person)
    cands = survivorship.candidates(conn, ids)
    gold = survivorship.golden(list(cands.values()), survivorship.SurvivorshipRules())
    records = _rows(conn, p, "id", ids)
    sr = t.table(t.SourceRecord)
    lineage = _rows(conn, sr, "entity_id", ids, sr.c.entity == "person")
    emails = _rows(conn, t.table(t.PersonEmail), "person_id", ids)
    phones = _rows(conn, t.table(t.PersonPhone), "person_id", ids)
    for rec in records:
        rid = rec["id"]
        rec["emails"] = [e["email"] for e in emails if e["person_id"] == rid]
        rec["phones"] = [x["phone"] for x in phones if x["person_id"] == rid]
        rec["sources"] = [
            {k: s[k] for k in ("connector", "stream", "source_id", "locator", "first_seen")}
            | {"last_seen": s["last_seen"]}
            for s in lineage
            if s["entity_id"] == rid
        ]
    org_ids = sorted({r["organization_id"] for r in records if r["organization_id"]})
    o = t.table(t.Organization)
    orgs = [
        {k: r[k] for k in ("id", "record_key", "name", "domain", "corporate_number")}
        for r in _rows(conn, o, "id", org_ids)
    ]
    ap = t.table(t.ActivityParticipant)
    parts = _rows(conn, ap, "person_id", ids)
    act_ids = sorted({x["activity_id"] for x in parts})[-MAX_ACTIVITIES:]
    a = t.table(t.Activity)
    activities = _rows(conn, a, "id", act_ids)
    everyone = _rows(conn, ap, "activity_id", act_ids)
    for act in activities:
        act["participants"] = [
            {k: x[k] for k in ("email", "role", "name", "response")}
            for x in everyone
            if x["activity_id"] == act["id"]
        ]
    s = t.table(t.Suppression)
    mt = t.table(ids_.IdentityMatch)
    evidence: list[dict[str, Any]] = []
    for part in chunks(ids, IN):
        q = select(mt).where(mt.c.entity == "person", or_(mt.c.a_id.in_(part), mt.c.b_id.in_(part)))
        evidence.extend({k: plain(v) for k, v in r.items()} for r in conn.execute(q).mappings())
    vals = found.values()
    mentions = [
        {k: plain(row[k]) for k in ("id", "connector", "stream", "reason", "path", "payload")}
        for tb, row, _ in redact.hits(conn, vals)
        if tb.name == "quarantine"
    ]
    return {
        "customer_id": found.customer_id,
        "generated_at": now().isoformat(),
        "golden_record": {k: v.get("value") for k, v in gold.items()},
        "golden_sources": plain(gold),
        "records": records,
        "organizations": orgs,
        "activities": activities,
        "consent": _rows(conn, t.table(t.Consent), "person_id", ids),
        "suppression": _rows(conn, s, "email", found.emails + found.shared),
        "deliveries": _rows(conn, t.table(ls.Delivery), "person_id", ids),
        "campaign_plans": _rows(conn, t.table(ls.PlanEntry), "person_id", ids),
        "segments": _rows(conn, t.table(ss.SegmentMembership), "person_id", ids),
        "deals": _rows(conn, t.table(t.Deal), "person_id", ids),
        "orders": _rows(conn, t.table(t.Order), "person_id", ids),
        "identity_evidence": evidence,
        "quarantine": mentions,
        "shared_addresses": found.shared,
    }


def record_request(
    conn: Connection, found: Found, requested_by: str, counts: dict[str, int]
) -> int:
    """Log the disclosure (who, when, for whom, how much): never its content."""
    return int(
        conn.execute(
            insert(PrivacyRequest).returning(PrivacyRequest.id),
            {
                "kind": "disclose",
                "customer_id": found.customer_id,
                "requested_by": requested_by[:200],
                "requested_at": now(),
                "summary": counts,
            },
        ).scalar_one()
    )
