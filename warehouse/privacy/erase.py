"""Erasing one customer (個人情報保護法 第35条 利用停止・消去): every record, every trace.

What goes: the customer's person records with their addresses, phones and lineage; every
row tied to them by id (consent evidence, ledger and plan lines, segment history, identity
graph rows, evidence and pins); what their source rows alone produced (the company written
from the same spreadsheet row is retired with its lineage, as when a row leaves its file);
their place in messages, and the messages that were only between them and staff; and then
their names, addresses and phones wherever else text holds them (``redact``).

What stays: deals and orders (the company's business) without the link to them; companies;
and, for each of their own addresses, a salted hash on the suppression list, so no channel
ever mails them again, plus a salted hash of each source record, so a sync that reads the
same row again holds it (``held``). An address another customer also gives (a team mailbox)
is theirs too: it is neither suppressed nor scrubbed, and the report counts it.

The request is recorded (who, when, the customer id, counts) without an erased value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, tuple_, update

from warehouse import schema as t
from warehouse.activation import audience
from warehouse.activation import ledger_schema as ls
from warehouse.activation import segment_schema as ss
from warehouse.identity import blocking
from warehouse.identity import schema as ids_
from warehouse.identity.crosswalk import find_record
from warehouse.identity.resolve import watermark
from warehouse.privacy import redact
from warehouse.privacy import salt as salt_
from warehouse.privacy.schema import ErasedRecord, PrivacyRequest
from warehouse.quotes import schema as qs
from warehouse.state import now
from warehouse.write.store_base import retire
from warehouse.write.upsert import chunks, insert_ignore, upsert

IN = 900


@dataclass
class Found:
    """One customer's records and the values that identify them (kept in memory only)."""

    customer_id: str
    record_ids: list[int]
    people: list[redact.Person]
    emails: list[str]
    """Their own addresses (not shared with another customer)."""
    shared: list[str]
    """Addresses another customer also gives: kept."""
    phones: list[str]
    sources: list[tuple[str, str, str]]

    def values(self) -> list[str]:
        return redact.values(self.people, self.emails, self.phones)


@dataclass
class Erased:
    request_id: int
    customer_id: str
    counts: dict[str, int] = field(default_factory=dict)
    message_ids: list[str] = field(default_factory=list)
    """Message-IDs of their deliveries: the outbox files the caller removes."""
    shared: int = 0
    values: list[str] = field(default_factory=list)
    """The forms searched for (for the caller's files); never stored."""


def _in(col: Any, ids: Sequence[Any]) -> list[Any]:
    return [col.in_(list(part)) for part in chunks(list(ids), IN)]


def find(conn: Connection, public_id: str) -> Found | None:
    """The customer a public id (``P-…``, or any of its records' keys) names."""
    hit = find_record(conn, public_id)
    if hit is None or hit[0] != "person":
        return None
    rid = hit[1]
    ids = audience.members(conn, [rid])[rid]
    p, pe, pp = t.table(t.Person), t.table(t.PersonEmail), t.table(t.PersonPhone)
    people: list[redact.Person] = []
    emails: set[str] = set()
    phones: set[str] = set()
    keys: list[str] = []
    for part in chunks(ids, IN):
        for row in conn.execute(select(p).where(p.c.id.in_(part))).mappings():
            people.append(
                redact.Person(
                    row["family_name"],
                    row["given_name"],
                    row["family_name_kana"],
                    row["given_name_kana"],
                    row["full_name"],
                )
            )
            if row["primary_email"]:
                emails.add(str(row["primary_email"]))
            if row["deleted_at"] is None and row["record_key"]:
                keys.append(str(row["record_key"]))
        emails |= {str(e) for e in conn.execute(select(pe.c.email).where(pe.c.person_id.in_(part)))}
        phones |= {str(x) for x in conn.execute(select(pp.c.phone).where(pp.c.person_id.in_(part)))}
    ap = t.table(t.ActivityParticipant)
    for cond in _in(ap.c.person_id, ids):
        for em, name in conn.execute(select(ap.c.email, ap.c.name).where(cond)):
            emails.add(str(em))
            if name:
                people.append(redact.Person(full=str(name)))
    others = {
        str(e)
        for part in chunks(sorted(emails), IN)
        for e in conn.execute(
            select(pe.c.email)
            .join(p, p.c.id == pe.c.person_id)
            .where(pe.c.email.in_(part), pe.c.person_id.not_in(ids), p.c.deleted_at.is_(None))
        )
    }
    sr = t.SourceRecord
    sources = sorted(
        {
            (str(c), str(s), str(i))
            for cond in _in(sr.entity_id, ids)
            for c, s, i in conn.execute(
                select(sr.connector, sr.stream, sr.source_id).where(sr.entity == "person", cond)
            )
        }
    )
    return Found(
        customer_id=min(keys) if keys else public_id.strip(),
        record_ids=sorted(ids),
        people=people,
        emails=sorted(emails - others),
        shared=sorted(emails & others),
        phones=sorted(phones),
        sources=sources,
    )


def erase(conn: Connection, found: Found, requested_by: str) -> Erased:
    """Remove the customer ``find`` returned, in the caller's transaction."""
    ts = now()
    salt = salt_.ensure(conn)
    req = conn.execute(
        insert(PrivacyRequest).returning(PrivacyRequest.id),
        {
            "kind": "erase",
            "customer_id": found.customer_id,
            "requested_by": requested_by[:200],
            "requested_at": ts,
            "summary": {},
        },
    ).scalar_one()
    out = Erased(int(req), found.customer_id, shared=len(found.shared), values=found.values())
    ids = found.record_ids
    n = out.counts

    def count(name: str, rows: int) -> None:
        if rows:
            n[name] = n.get(name, 0) + rows

    insert_ignore(
        conn,
        t.table(ErasedRecord),
        [
            {"digest": salt_.record_digest(salt, *k), "request_id": out.request_id}
            for k in found.sources
        ],
        ["digest"],
    )
    sup = t.table(t.Suppression)
    for part in chunks(found.emails, IN):
        count("suppression", conn.execute(delete(sup).where(sup.c.email.in_(part))).rowcount)
    upsert(
        conn,
        sup,
        [
            {
                "email": salt_.address_token(salt, e),
                "reason": "erased",
                "source": f"privacy request {out.request_id}",
                "recorded_at": ts,
                "active": True,
            }
            for e in found.emails
        ],
        ["email"],
    )
    _lineage(conn, found, count, ts)
    out.message_ids = _ledger(conn, ids, count)
    _activities(conn, found, count)
    _identity(conn, ids, count)
    d, o = t.table(t.Deal), t.table(t.Order)
    for cond in _in(d.c.person_id, ids):
        count("deal", conn.execute(update(d).where(cond).values(person_id=None)).rowcount)
    for cond in _in(o.c.person_id, ids):
        count("purchase_order", conn.execute(update(o).where(cond).values(person_id=None)).rowcount)
    for model in (t.PersonEmail, t.PersonPhone, t.Consent):
        tb = t.table(model)
        for cond in _in(tb.c.person_id, ids):
            count(tb.name, conn.execute(delete(tb).where(cond)).rowcount)
    p = t.table(t.Person)
    for cond in _in(p.c.id, ids):
        count("person", conn.execute(delete(p).where(cond)).rowcount)
    for table, rows in redact.redact(conn, out.values).items():
        count(f"{table} (text)", rows)
    conn.execute(
        update(PrivacyRequest)
        .where(PrivacyRequest.id == out.request_id)
        .values(summary={"records": len(ids), "shared_addresses_kept": out.shared, **n})
    )
    return out


def _lineage(conn: Connection, found: Found, count: Any, ts: Any) -> None:
    """Their source rows' lineage goes; what those rows alone produced is retired."""
    sr = t.table(t.SourceRecord)
    produced: dict[str, set[int]] = {}
    for part in chunks(found.sources, 300):
        cond = tuple_(sr.c.connector, sr.c.stream, sr.c.source_id).in_(list(part))
        for entity, eid in conn.execute(select(sr.c.entity, sr.c.entity_id).where(cond)):
            if eid is not None and entity != "person":
                produced.setdefault(str(entity), set()).add(int(eid))
        count("source_record", conn.execute(delete(sr).where(cond)).rowcount)
    for entity, eids in produced.items():
        retire(conn, entity, sorted(eids), ts)


def unresolved(conn: Connection) -> int:
    """Person records written since identity resolution last ran: until it runs again, a
    record of this customer among them is not known to be theirs (and would be left)."""
    p = t.table(t.Person)
    q = select(func.count()).select_from(p)
    mark = watermark(conn)
    if mark is not None:
        q = q.where(p.c.updated_at > mark)
    return int(conn.execute(q).scalar_one())


def message_ids(conn: Connection, ids: Sequence[int]) -> list[str]:
    """The Message-IDs of the customer's deliveries (their outbox files are named by them)."""
    dl = t.table(ls.Delivery)
    return [
        str(m)
        for part in chunks(list(ids), IN)
        for m in conn.execute(select(dl.c.message_id).where(dl.c.person_id.in_(part))).scalars()
    ]


def _ledger(conn: Connection, ids: Sequence[int], count: Any) -> list[str]:
    dl = t.table(ls.Delivery)
    mids = [
        str(m)
        for cond in _in(dl.c.person_id, ids)
        for m in conn.execute(select(dl.c.message_id).where(cond))
    ]
    for model in (ls.Delivery, ls.PlanEntry, ss.SegmentMembership):
        tb = t.table(model)
        for cond in _in(tb.c.person_id, ids):
            count(tb.name, conn.execute(delete(tb).where(cond)).rowcount)
    return mids


def _activities(conn: Connection, found: Found, count: Any) -> None:
    """Out of every message; a message left with no customer in it was theirs alone: it goes."""
    ap, a = t.table(t.ActivityParticipant), t.table(t.Activity)
    touched: set[int] = set()
    conds = _in(ap.c.person_id, found.record_ids) + _in(ap.c.email, found.emails)
    for cond in conds:
        touched |= {int(x) for x in conn.execute(select(ap.c.activity_id).where(cond)).scalars()}
        count(ap.name, conn.execute(delete(ap).where(cond)).rowcount)
    keep: set[int] = set()
    for part in chunks(sorted(touched), IN):
        keep |= {
            int(x)
            for x in conn.execute(
                select(ap.c.activity_id).where(
                    ap.c.activity_id.in_(part), ap.c.person_id.is_not(None)
                )
            ).scalars()
        }
    gone = sorted(touched - keep)
    sr = t.table(t.SourceRecord)
    q = t.table(qs.Quote)
    for part in chunks(gone, IN):
        conn.execute(update(q).where(q.c.activity_id.in_(part)).values(activity_id=None))
        conn.execute(delete(ap).where(ap.c.activity_id.in_(part)))
        conn.execute(delete(sr).where(sr.c.entity == "activity", sr.c.entity_id.in_(part)))
        count("activity", conn.execute(delete(a).where(a.c.id.in_(part))).rowcount)


def _identity(conn: Connection, ids: Sequence[int], count: Any) -> None:
    """Their rows of the identity graph: membership, cluster, aliases, evidence, pins, keys."""
    m, c = t.table(ids_.IdentityMember), t.table(ids_.IdentityCluster)
    al, mt = t.table(ids_.IdentityAlias), t.table(ids_.IdentityMatch)
    pin = t.table(ids_.IdentityPin)
    person = "person"
    clusters = set(ids)
    for cond in _in(m.c.record_id, ids):
        clusters |= {
            int(x)
            for x in conn.execute(
                select(m.c.cluster_id).where(m.c.entity == person, cond)
            ).scalars()
        }
    cl = sorted(clusters)
    for part in chunks(cl, IN):
        count(
            m.name,
            conn.execute(
                delete(m).where(
                    m.c.entity == person, or_(m.c.cluster_id.in_(part), m.c.record_id.in_(part))
                )
            ).rowcount,
        )
        count(
            c.name, conn.execute(delete(c).where(c.c.entity == person, c.c.id.in_(part))).rowcount
        )
        count(
            al.name,
            conn.execute(
                delete(al).where(
                    al.c.entity == person, or_(al.c.cluster_id.in_(part), al.c.alias_id.in_(part))
                )
            ).rowcount,
        )
    # Blocking keys are digests of names and contacts: found again from the stored features.
    count("identity_feature", blocking.forget(conn, person, ids))
    for part in chunks(list(ids), IN):
        for tb, cols in (
            (mt, ("a_id", "b_id")),
            (pin, ("a_id", "b_id")),
        ):
            cond = or_(*[tb.c[col].in_(part) for col in cols])
            count(tb.name, conn.execute(delete(tb).where(tb.c.entity == person, cond)).rowcount)
