"""Writing a page of unified records: one transaction, bulk statements, lineage and cursor.

``apply_page`` is the only way records enter the store. It runs inside the caller's
transaction, so a page's rows, its lineage, its quarantined records and the stream's cursor
commit together or not at all.

Linking rules at this layer (the identity resolver refines them later):
- a source row keeps the unified row it produced before (lineage wins);
- people sharing a normalised email are one person;
- organizations sharing a 法人番号, then a domain, then a normalised name are one organization;
- activities sharing a ``key`` (e.g. a Message-ID) are one activity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, insert, select, update
from sqlalchemy.sql import bindparam, func

from warehouse import records as r
from warehouse import schema as t
from warehouse.bulk import executemany, insert_ids, insert_ignore_fast
from warehouse.normalize import email_domain, normalize_org_name
from warehouse.state import Quarantined, StreamKey, now, quarantine, save_cursor
from warehouse.upsert import chunks, insert_ignore

IN_CHUNK = 900


@dataclass
class PageStats:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    quarantined: int = 0
    by_entity: dict[str, int] = field(default_factory=dict)

    def add(self, other: PageStats) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.deleted += other.deleted
        self.quarantined += other.quarantined
        for k, v in other.by_entity.items():
            self.by_entity[k] = self.by_entity.get(k, 0) + v

    def counts(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "quarantined": self.quarantined,
        }


ENTITY = {
    r.Organization: "organization",
    r.Person: "person",
    r.Deal: "deal",
    r.Activity: "activity",
    r.Order: "order",
}


ENTITY_TABLE: dict[str, Any] = {
    "organization": t.table(t.Organization),
    "person": t.table(t.Person),
    "deal": t.table(t.Deal),
    "activity": t.table(t.Activity),
    "order": t.table(t.Order),
}


def _select_in(conn: Connection, stmt_for: Any, values: Iterable[Any]) -> list[Any]:
    """Rows of ``stmt_for(ids)`` for many ids, in chunks the databases accept.

    The statement is built once around an expanding parameter and each chunk is bound at
    execution: building ``IN (…)`` from a list of literals costs more per id than the
    lookup itself.
    """
    vals = list(values)
    out: list[Any] = []
    if not vals:
        return out
    stmt = stmt_for(bindparam("in_values", expanding=True))
    for part in chunks(vals, IN_CHUNK):
        out.extend(conn.execute(stmt, {"in_values": list(part)}).all())
    return out


def unchanged_ids(conn: Connection, key: StreamKey, hashes: Mapping[str, str]) -> set[str]:
    """Source ids whose stored payload hash equals the given one (and are not deleted).

    The flow asks this before mapping, so an unchanged row costs one hash and no writes.
    A source row may have several lineage rows (one per entity it produced); the database
    folds them, so one row per candidate id comes back and no timestamp is parsed.
    """
    if not hashes:
        return set()
    sr = t.SourceRecord
    # One statement, its id list bound at execution: building a fresh IN (...) clause per
    # chunk costs more than SQLite's lookup of the ids.
    stmt = (
        select(sr.source_id, func.max(sr.payload_hash))
        .where(
            sr.connector == key.connector,
            sr.stream == key.stream,
            sr.source_id.in_(bindparam("ids", expanding=True)),
        )
        .group_by(sr.source_id)
        .having(
            func.count(sr.deleted_at) == 0, func.min(sr.payload_hash) == func.max(sr.payload_hash)
        )
    )
    same: set[str] = set()
    for part in chunks(list(hashes), IN_CHUNK):
        for sid, h in conn.execute(stmt, {"ids": list(part)}).all():
            if h == hashes[sid]:
                same.add(sid)
    return same


def apply_page(
    conn: Connection,
    key: StreamKey,
    *,
    records: Sequence[r.Record] = (),
    deleted: Sequence[str] = (),
    quarantined: Sequence[Quarantined] = (),
    cursor: dict[str, Any] | None = None,
    write_cursor: bool = True,
    run_id: str | None = None,
) -> PageStats:
    """Write one page: records, deletions, quarantine and (last) the cursor."""
    ts = now()
    stats = PageStats()
    w = _Writer(conn, key, ts, stats)
    orgs = [x for x in records if isinstance(x, r.Organization)]
    people = [x for x in records if isinstance(x, r.Person)]
    deals = [x for x in records if isinstance(x, r.Deal)]
    acts = [x for x in records if isinstance(x, r.Activity)]
    orders = [x for x in records if isinstance(x, r.Order)]
    if orgs:
        w.organizations(orgs)
    if people:
        w.people(people)
    if deals:
        w.deals(deals)
    if acts:
        w.activities(acts)
    if orders:
        w.orders(orders)
    if deleted:
        stats.deleted += mark_deleted(conn, key, deleted, ts)
    stats.quarantined += quarantine(conn, key, quarantined, run_id)
    if write_cursor:
        save_cursor(conn, key, cursor, run_id)
    return stats


def mark_deleted(conn: Connection, key: StreamKey, source_ids: Sequence[str], ts: datetime) -> int:
    """Mark source rows deleted; a unified row dies only when no live source still has it."""
    sr = t.SourceRecord
    hit = _select_in(
        conn,
        lambda part: select(sr.id, sr.entity, sr.entity_id).where(
            sr.connector == key.connector,
            sr.stream == key.stream,
            sr.source_id.in_(part),
            sr.deleted_at.is_(None),
        ),
        source_ids,
    )
    if not hit:
        return 0
    for part in chunks([row[0] for row in hit], IN_CHUNK):
        conn.execute(update(sr).where(sr.id.in_(part)).values(deleted_at=ts))
    by_entity: dict[str, set[int]] = {}
    for _, entity, eid in hit:
        if eid is not None:
            by_entity.setdefault(entity, set()).add(eid)
    for entity, ids in by_entity.items():
        retire(conn, entity, sorted(ids), ts)
    return len(hit)


def retire(conn: Connection, entity: str, ids: Sequence[int], ts: datetime) -> None:
    """Mark unified rows deleted where no live source row still has them."""
    sr = t.SourceRecord
    table = ENTITY_TABLE[entity]
    live = (
        select(sr.id)
        .where(sr.entity == entity, sr.entity_id == table.c.id, sr.deleted_at.is_(None))
        .exists()
    )
    for part in chunks(list(ids), IN_CHUNK):
        conn.execute(
            update(table)
            .where(table.c.id.in_(part), ~live, table.c.deleted_at.is_(None))
            .values(deleted_at=ts)
        )


def _org_key(ref: r.OrgRef | r.Organization) -> tuple[str, str] | None:
    if ref.corporate_number:
        return ("c", ref.corporate_number)
    if ref.domain:
        return ("d", ref.domain)
    if ref.name and normalize_org_name(ref.name):
        return ("n", normalize_org_name(ref.name))
    return None


def _name_key(ref: r.OrgRef | r.Organization) -> str | None:
    return (normalize_org_name(ref.name) or None) if ref.name else None


class _Writer:
    """Bulk writes for one page; every method issues a handful of statements per page."""

    def __init__(self, conn: Connection, key: StreamKey, ts: datetime, stats: PageStats) -> None:
        self.conn = conn
        self.key = key
        self.ts = ts
        self.stats = stats
        self._staff: dict[str, int] = {}
        self._orgs: dict[tuple[str, str], int] = {}

    # -- lineage -------------------------------------------------------------------------
    def _lineage(self, entity: str, source_ids: Sequence[str]) -> dict[str, int]:
        sr = t.SourceRecord
        rows = _select_in(
            self.conn,
            lambda part: select(sr.source_id, sr.entity_id).where(
                sr.connector == self.key.connector,
                sr.stream == self.key.stream,
                sr.entity == entity,
                sr.source_id.in_(part),
            ),
            set(source_ids),
        )
        return {sid: eid for sid, eid in rows if eid is not None}

    def _record_lineage(self, entity: str, items: Sequence[tuple[str, str, int]]) -> None:
        """(source_id, payload_hash, entity_id) → replace the lineage of those source rows.

        A source row may produce several unified rows (a recurring meeting's occurrences);
        rows it produced before but no longer does are retired unless another source still
        has them.
        """
        if not items:
            return
        sr = t.SourceRecord
        sids = sorted({s for s, _, _ in items})
        old = _select_in(
            self.conn,
            lambda part: select(sr.id, sr.source_id, sr.entity_id, sr.first_seen).where(
                sr.connector == self.key.connector,
                sr.stream == self.key.stream,
                sr.entity == entity,
                sr.source_id.in_(part),
            ),
            sids,
        )
        first: dict[str, datetime] = {}
        for _, sid, _, fs in old:
            if sid not in first or fs < first[sid]:
                first[sid] = fs
        for part in chunks([row[0] for row in old], IN_CHUNK):
            self.conn.execute(delete(sr).where(sr.id.in_(part)))
        rows = [
            {
                "connector": self.key.connector,
                "stream": self.key.stream,
                "source_id": sid,
                "entity": entity,
                "entity_id": eid,
                "payload_hash": h,
                "first_seen": first.get(sid, self.ts),
                "last_seen": self.ts,
                "deleted_at": None,
            }
            for sid, h, eid in sorted({(s, h, e) for s, h, e in items})
        ]
        executemany(self.conn, insert(sr), _dedupe(rows, ("source_id", "entity_id")))
        table = ENTITY_TABLE[entity]
        now_ids = {eid for _, _, eid in items}
        revived = sorted(now_ids)
        for part in chunks(revived, IN_CHUNK):
            self.conn.execute(
                update(table)
                .where(table.c.id.in_(part), table.c.deleted_at.is_not(None))
                .values(deleted_at=None)
            )
        dropped = sorted({eid for _, _, eid, _ in old if eid is not None} - now_ids)
        if dropped:
            retire(self.conn, entity, dropped, self.ts)

    def _count(self, entity: str, inserted: int, updated: int) -> None:
        self.stats.inserted += inserted
        self.stats.updated += updated
        self.stats.by_entity[entity] = self.stats.by_entity.get(entity, 0) + inserted + updated

    # -- staff ---------------------------------------------------------------------------
    def staff_ids(self, emails: Iterable[str], names: Mapping[str, str | None]) -> dict[str, int]:
        want = {e for e in emails if e and e not in self._staff}
        if want:
            su = t.StaffUser
            insert_ignore(
                self.conn,
                t.table(su),
                [
                    {
                        "email": e,
                        "name": names.get(e),
                        "visibility": "own",
                        "time_zone": "Asia/Tokyo",
                    }
                    for e in sorted(want)
                ],
                ["email"],
            )
            for e, i in _select_in(
                self.conn, lambda part: select(su.email, su.id).where(su.email.in_(part)), want
            ):
                self._staff[e] = i
        return self._staff

    # -- organizations -------------------------------------------------------------------
    def org_ids(self, refs: Sequence[r.OrgRef | r.Organization]) -> dict[tuple[str, str], int]:
        """Find or create the organization of every reference; returns key → id.

        A page asks for the same companies several times (its organizations, then its
        people's and deals' references); keys resolved earlier in the page are remembered.
        """
        todo: list[r.OrgRef | r.Organization] = []
        known: dict[tuple[str, str], int] = {}
        for ref in refs:
            k = _org_key(ref)
            if k is None:
                continue
            oid = self._orgs.get(k)
            if oid is None:
                todo.append(ref)
            else:
                known[k] = oid
        found = self._find_or_create_orgs(todo) if todo else {}
        self._orgs.update(found)
        return {**found, **known}

    def _find_or_create_orgs(
        self, refs: Sequence[r.OrgRef | r.Organization]
    ) -> dict[tuple[str, str], int]:
        wanted: dict[tuple[str, str], r.OrgRef | r.Organization] = {}
        for ref in refs:
            k = _org_key(ref)
            if k is not None and k not in wanted:
                wanted[k] = ref
        if not wanted:
            return {}
        o = t.Organization
        found: dict[tuple[str, str], int] = {}
        by_kind: dict[str, list[str]] = {"c": [], "d": [], "n": []}
        for kind, val in wanted:
            by_kind[kind].append(val)
        # Names of references known by number or domain too, for the by-name fallback below.
        names = {n for k, ref in wanted.items() if k[0] != "n" and (n := _name_key(ref))}
        by_kind["n"].extend(sorted(names - set(by_kind["n"])))
        for kind, col in (("c", o.corporate_number), ("d", o.domain), ("n", o.name_normalized)):
            if by_kind[kind]:
                for val, oid in _select_in(
                    self.conn,
                    lambda part, col=col: (
                        select(col, o.id).where(col.in_(part)).order_by(o.id.desc())
                    ),
                    by_kind[kind],
                ):
                    found[(kind, val)] = oid
        # A reference known by domain may also name a company we only know by name.
        via_name: set[tuple[str, str]] = set()
        for k, ref in wanted.items():
            if k in found:
                continue
            if ref.name:
                nk = ("n", normalize_org_name(ref.name))
                if nk in found:
                    found[k] = found[nk]
                    via_name.add(k)
                    continue
        missing = [(k, ref) for k, ref in wanted.items() if k not in found]
        if missing:
            rows: list[dict[str, Any]] = []
            for _, ref in missing:
                name = ref.name or ref.domain or ref.corporate_number or "?"
                rows.append(
                    {
                        "name": name,
                        "name_normalized": normalize_org_name(name),
                        "domain": ref.domain,
                        "corporate_number": ref.corporate_number,
                        "attributes": {},
                        "created_at": self.ts,
                        "updated_at": self.ts,
                    }
                )
            # Two references in one page may denote one company (a domain and a name):
            # references sharing any key become one new row.
            seen: dict[tuple[str, str], int] = {}
            uniq_rows: list[dict[str, Any]] = []
            index: list[int] = []
            for row in rows:
                keys = [
                    (k, v)
                    for k, v in (
                        ("c", row["corporate_number"]),
                        ("d", row["domain"]),
                        ("n", row["name_normalized"]),
                    )
                    if v
                ]
                hit = next((seen[k] for k in keys if k in seen), None)
                if hit is None:
                    hit = len(uniq_rows)
                    uniq_rows.append(row)
                else:
                    kept = uniq_rows[hit]
                    for name_ in ("domain", "corporate_number"):
                        kept[name_] = kept[name_] or row[name_]
                    if kept["name"] == kept["domain"] and row["name"] != row["domain"]:
                        kept["name"] = row["name"]
                        kept["name_normalized"] = row["name_normalized"]
                for k in keys:
                    seen.setdefault(k, hit)
                index.append(hit)
            ids = insert_ids(self.conn, o, uniq_rows)
            for (k, _), i in zip(missing, index, strict=True):
                found[k] = ids[i]
            self.stats.inserted += len(uniq_rows)
            self.stats.by_entity["organization"] = self.stats.by_entity.get(
                "organization", 0
            ) + len(uniq_rows)
        # Fill in a domain we learnt for a company known only by name.
        fill = [
            {"b_id": found[k], "b_domain": ref.domain}
            for k, ref in wanted.items()
            if (k[0] == "n" or k in via_name) and ref.domain and k in found
        ]
        if fill:
            self.conn.execute(
                update(o)
                .where(o.id == bindparam("b_id"), o.domain.is_(None))
                .where(~exists().where(o.domain == bindparam("b_domain")))
                .values(domain=bindparam("b_domain")),
                fill,
            )
        return found

    def organizations(self, orgs: Sequence[r.Organization]) -> None:
        lineage = self._lineage("organization", [x.source_id for x in orgs])
        ids = self.org_ids([x for x in orgs if x.source_id not in lineage])
        staff = self.staff_ids([x.owner_email for x in orgs if x.owner_email], {})
        o = t.Organization
        rows = []
        items = []
        attrs: list[dict[str, Any]] = []
        for x in orgs:
            oid = lineage.get(x.source_id)
            if oid is None:
                k = _org_key(x)
                if k is None:
                    continue
                oid = ids[k]
            items.append((x.source_id, x.payload_hash, oid))
            if x.attributes:
                attrs.append({"b_id": oid, "b_attributes": dict(x.attributes)})
            rows.append(
                {
                    "b_id": oid,
                    "name": x.name,
                    "name_normalized": normalize_org_name(x.name),
                    "corporate_number": x.corporate_number,
                    "industry": x.industry,
                    "size": x.size,
                    "address": x.address,
                    "phone": x.phone,
                    "owner_id": staff.get(x.owner_email) if x.owner_email else None,
                    "updated_at": self.ts,
                }
            )
        if rows:
            executemany(
                self.conn,
                update(o)
                .where(o.id == bindparam("b_id"))
                .values(
                    name=bindparam("name"),
                    name_normalized=bindparam("name_normalized"),
                    corporate_number=func.coalesce(
                        bindparam("corporate_number"), o.corporate_number
                    ),
                    industry=func.coalesce(bindparam("industry"), o.industry),
                    size=func.coalesce(bindparam("size"), o.size),
                    address=func.coalesce(bindparam("address"), o.address),
                    phone=func.coalesce(bindparam("phone"), o.phone),
                    owner_id=func.coalesce(bindparam("owner_id"), o.owner_id),
                    updated_at=bindparam("updated_at"),
                ),
                _fold_org_updates(rows),
            )
            self._count("organization", 0, len(rows))
        if attrs:  # as for people: a record with custom fields replaces them
            executemany(
                self.conn,
                update(o)
                .where(o.id == bindparam("b_id"))
                .values(attributes=bindparam("b_attributes")),
                list({a["b_id"]: a for a in attrs}.values()),  # the last one wins anyway
            )
        self._record_lineage("organization", items)

    # -- people --------------------------------------------------------------------------
    def person_ids_by_email(self, emails: Iterable[str]) -> dict[str, int]:
        pe = t.PersonEmail
        return dict(
            _select_in(
                self.conn,
                lambda part: select(pe.email, pe.person_id).where(pe.email.in_(part)),
                set(emails),
            )
        )

    def people(self, people: Sequence[r.Person]) -> None:
        lineage = self._lineage("person", [x.source_id for x in people])
        by_email = self.person_ids_by_email(e for x in people for e in x.emails)
        # A person's company domain is also evidence of the company.
        refs = [self._person_org_ref(x) or r.OrgRef() for x in people]
        org_ids = self.org_ids([x for x in refs if _org_key(x)])
        staff = self.staff_ids([x.owner_email for x in people if x.owner_email], {})

        # Assign each record a person: lineage, then any known email, then a new person.
        # Records in this page that share an email share the new person too.
        assigned: list[int | None] = []
        pending: dict[str, int] = {}  # email → index of the record creating the person
        creators: list[int] = []
        for i, x in enumerate(people):
            pid = lineage.get(x.source_id)
            if pid is None:
                pid = next((by_email[e] for e in x.emails if e in by_email), None)
            if pid is None:
                owner = next((pending[e] for e in x.emails if e in pending), None)
                if owner is not None:
                    assigned.append(-(owner + 1))
                    continue
                creators.append(i)
                for e in x.emails:
                    pending[e] = i
                assigned.append(None)
            else:
                assigned.append(pid)

        p = t.Person
        new_ids: dict[int, int] = {}
        if creators:
            rows = [self._person_row(people[i], refs[i], org_ids, staff) for i in creators]
            for row in rows:
                row["created_at"] = self.ts
            ids = insert_ids(self.conn, p, rows)
            new_ids = dict(zip(creators, ids, strict=True))
        final: list[int] = []
        for i, a in enumerate(assigned):
            if a is None:
                final.append(new_ids[i])
            elif a < 0:
                final.append(new_ids[-a - 1])
            else:
                final.append(a)
        updates = []
        for i, x in enumerate(people):
            if i in new_ids:
                continue
            row = self._person_row(x, refs[i], org_ids, staff)
            row["b_id"] = final[i]
            updates.append(row)
        if updates:
            cols = [c for c in updates[0] if c not in ("b_id", "updated_at", "attributes")]
            values: dict[str, Any] = {c: func.coalesce(bindparam(c), getattr(p, c)) for c in cols}
            values["updated_at"] = bindparam("updated_at")
            executemany(
                self.conn, update(p).where(p.id == bindparam("b_id")).values(values), updates
            )
            attrs = [
                {"b_id": u["b_id"], "b_attributes": u["attributes"]}
                for u in updates
                if u["attributes"]
            ]
            if attrs:
                executemany(
                    self.conn,
                    update(p)
                    .where(p.id == bindparam("b_id"))
                    .values(attributes=bindparam("b_attributes")),
                    attrs,
                )
        self._count("person", len(new_ids), len(updates))
        self._link_contacts(people, final)
        self._record_lineage(
            "person", [(x.source_id, x.payload_hash, final[i]) for i, x in enumerate(people)]
        )

    @staticmethod
    def _person_org_ref(x: r.Person) -> r.OrgRef | None:
        domain = next((d for d in (email_domain(e) for e in x.emails) if d), None)
        if x.organization is not None:
            if x.organization.domain or not domain:
                return x.organization
            return r.OrgRef(
                name=x.organization.name,
                domain=domain,
                corporate_number=x.organization.corporate_number,
            )
        if domain:
            return r.OrgRef(domain=domain)
        return None

    def _person_row(
        self,
        x: r.Person,
        ref: r.OrgRef,
        org_ids: Mapping[tuple[str, str], int],
        staff: Mapping[str, int],
    ) -> dict[str, Any]:
        k = _org_key(ref)
        return {
            "family_name": x.family_name,
            "given_name": x.given_name,
            "family_name_kana": x.family_name_kana,
            "given_name_kana": x.given_name_kana,
            "full_name": x.display_name(),
            "primary_email": x.emails[0] if x.emails else None,
            "title": x.title,
            "department": x.department,
            "gender": x.gender,
            "birth_date": x.birth_date,
            "organization_id": org_ids.get(k) if k else None,
            "owner_id": staff.get(x.owner_email) if x.owner_email else None,
            "lifecycle_stage": x.lifecycle_stage,
            "attributes": dict(x.attributes),
            "updated_at": self.ts,
        }

    def _link_contacts(self, people: Sequence[r.Person], ids: Sequence[int]) -> None:
        emails = [
            {"email": e, "person_id": pid}
            for x, pid in zip(people, ids, strict=True)
            for e in x.emails
        ]
        phones = [
            {"person_id": pid, "phone": ph}
            for x, pid in zip(people, ids, strict=True)
            for ph in x.phones
        ]
        insert_ignore_fast(
            self.conn, t.table(t.PersonEmail), _dedupe(emails, ("email",)), ["email"]
        )
        insert_ignore_fast(
            self.conn,
            t.table(t.PersonPhone),
            _dedupe(phones, ("person_id", "phone")),
            ["person_id", "phone"],
        )

    def ensure_people(self, contacts: Mapping[str, str | None]) -> dict[str, int]:
        """Person ids for addresses, creating a minimal person (name, email, company) if unknown."""
        known = self.person_ids_by_email(contacts)
        missing = sorted(e for e in contacts if e not in known)
        if missing:
            refs = [r.OrgRef(domain=d) if (d := email_domain(e)) else r.OrgRef() for e in missing]
            org_ids = self.org_ids([x for x in refs if _org_key(x)])
            p = t.Person
            rows: list[dict[str, Any]] = []
            for e, ref in zip(missing, refs, strict=True):
                k = _org_key(ref)
                rows.append(
                    {
                        "full_name": contacts[e],
                        "primary_email": e,
                        "organization_id": org_ids.get(k) if k else None,
                        "attributes": {},
                        "created_at": self.ts,
                        "updated_at": self.ts,
                    }
                )
            ids = insert_ids(self.conn, p, rows)
            insert_ignore(
                self.conn,
                t.table(t.PersonEmail),
                [{"email": e, "person_id": i} for e, i in zip(missing, ids, strict=True)],
                ["email"],
            )
            known.update(zip(missing, ids, strict=True))
            self._count("person", len(ids), 0)
            self._record_lineage(
                "person", [(f"address:{e}", "", i) for e, i in zip(missing, ids, strict=True)]
            )
        return known

    # -- deals ---------------------------------------------------------------------------
    def deals(self, deals: Sequence[r.Deal]) -> None:
        lineage = self._lineage("deal", [x.source_id for x in deals])
        org_ids = self.org_ids([x.organization for x in deals if x.organization])
        contacts = self.person_ids_by_email(x.contact_email for x in deals if x.contact_email)
        staff = self.staff_ids([x.owner_email for x in deals if x.owner_email], {})
        d = t.Deal
        current: dict[int, str | None] = dict(
            _select_in(
                self.conn,
                lambda part: select(d.id, d.stage).where(d.id.in_(part)),
                lineage.values(),
            )
        )

        def row(x: r.Deal) -> dict[str, Any]:
            k = _org_key(x.organization) if x.organization else None
            return {
                "name": x.name,
                "organization_id": org_ids.get(k) if k else None,
                "person_id": contacts.get(x.contact_email) if x.contact_email else None,
                "stage": x.stage,
                "amount": x.amount,
                "currency": x.currency,
                "probability": x.probability,
                "expected_close": x.expected_close,
                "status": x.status,
                "owner_id": staff.get(x.owner_email) if x.owner_email else None,
                "attributes": dict(x.attributes),
                "updated_at": self.ts,
            }

        new = [x for x in deals if x.source_id not in lineage]
        # One source row → one deal even if the page repeats it.
        uniq_new = list({x.source_id: x for x in new}.values())
        ids: dict[str, int] = dict(lineage)
        history: list[dict[str, Any]] = []
        if uniq_new:
            rows = [row(x) | {"created_at": self.ts} for x in uniq_new]
            got = insert_ids(self.conn, d, rows)
            for x, i in zip(uniq_new, got, strict=True):
                ids[x.source_id] = i
                history.append(
                    {"deal_id": i, "stage": x.stage, "entered_at": x.changed_at or self.ts}
                )
        old = [x for x in deals if x.source_id in lineage]
        if old:
            ups = [row(x) | {"b_id": lineage[x.source_id]} for x in old]
            cols: dict[str, Any] = {c: bindparam(c) for c in ups[0] if c != "b_id"}
            executemany(self.conn, update(d).where(d.id == bindparam("b_id")).values(cols), ups)
            for x in old:
                did = lineage[x.source_id]
                if current.get(did) != x.stage:
                    history.append(
                        {"deal_id": did, "stage": x.stage, "entered_at": x.changed_at or self.ts}
                    )
                    current[did] = x.stage
        if history:
            executemany(self.conn, insert(t.DealStageHistory), history)
        self._count("deal", len(uniq_new), len(old))
        self._record_lineage(
            "deal", [(x.source_id, x.payload_hash, ids[x.source_id]) for x in deals]
        )

    # -- activities ----------------------------------------------------------------------
    def activities(self, acts: Sequence[r.Activity]) -> None:
        a = t.Activity
        # Last one wins within a page; the highest revision wins across pages.
        latest: dict[str, r.Activity] = {}
        for x in acts:
            prev = latest.get(x.key)
            if prev is None or x.revision >= prev.revision:
                latest[x.key] = x
        existing = {
            k: (i, rev)
            for k, i, rev in _select_in(
                self.conn,
                lambda part: select(a.key, a.id, a.revision).where(a.key.in_(part)),
                latest,
            )
        }
        deal_lineage = self._deal_ids(
            [x.deal_source_id for x in latest.values() if x.deal_source_id]
        )

        def row(x: r.Activity) -> dict[str, Any]:
            return {
                "key": x.key,
                "kind": x.kind,
                "occurred_at": x.occurred_at,
                "ends_at": x.ends_at,
                "direction": x.direction,
                "subject": x.subject,
                "snippet": x.snippet,
                "thread_key": x.thread_key,
                "location": x.location,
                "status": x.status,
                "revision": x.revision,
                "deal_id": deal_lineage.get(x.deal_source_id) if x.deal_source_id else None,
                "attributes": dict(x.attributes),
                "updated_at": self.ts,
            }

        new = [x for k, x in latest.items() if k not in existing]
        changed = [x for k, x in latest.items() if k in existing and x.revision >= existing[k][1]]
        ids = {k: i for k, (i, _) in existing.items()}
        if new:
            got = insert_ids(self.conn, a, [row(x) | {"created_at": self.ts} for x in new])
            ids.update(zip((x.key for x in new), got, strict=True))
        if changed:
            ups = [row(x) | {"b_id": ids[x.key]} for x in changed]
            cols: dict[str, Any] = {c: bindparam(c) for c in ups[0] if c not in ("b_id", "key")}
            executemany(self.conn, update(a).where(a.id == bindparam("b_id")).values(cols), ups)
        self._count("activity", len(new), len(changed))
        self._participants([*new, *changed], ids)
        self._record_lineage("activity", [(x.source_id, x.payload_hash, ids[x.key]) for x in acts])

    def _deal_ids(self, source_ids: Sequence[str]) -> dict[str, int]:
        if not source_ids:
            return {}
        sr = t.SourceRecord
        rows = _select_in(
            self.conn,
            lambda part: select(sr.source_id, sr.entity_id).where(
                sr.connector == self.key.connector, sr.entity == "deal", sr.source_id.in_(part)
            ),
            set(source_ids),
        )
        return {s: i for s, i in rows if i is not None}

    def _participants(self, acts: Sequence[r.Activity], ids: Mapping[str, int]) -> None:
        if not acts:
            return
        external: dict[str, str | None] = {}
        internal: dict[str, str | None] = {}
        for x in acts:
            for pt in x.participants:
                target = internal if pt.internal else external
                if pt.email not in target or (pt.name and not target[pt.email]):
                    target[pt.email] = pt.name
        people = self.ensure_people(external) if external else {}
        staff = self.staff_ids(internal, internal) if internal else {}
        ap = t.ActivityParticipant
        act_ids = sorted({ids[x.key] for x in acts})
        for part in chunks(act_ids, IN_CHUNK):
            self.conn.execute(delete(ap).where(ap.activity_id.in_(part)))
        rows = [
            {
                "activity_id": ids[x.key],
                "email": pt.email,
                "role": pt.role,
                "person_id": None if pt.internal else people.get(pt.email),
                "staff_user_id": staff.get(pt.email) if pt.internal else None,
                "name": pt.name,
                "response": pt.response,
            }
            for x in acts
            for pt in x.participants
        ]
        rows = _dedupe(rows, ("activity_id", "email", "role"))
        if rows:
            executemany(self.conn, insert(ap), rows)

    # -- orders --------------------------------------------------------------------------
    def orders(self, orders: Sequence[r.Order]) -> None:
        lineage = self._lineage("order", [x.source_id for x in orders])
        people = self.person_ids_by_email(x.person_email for x in orders if x.person_email)
        org_ids = self.org_ids([x.organization for x in orders if x.organization])
        o = t.Order

        def row(x: r.Order) -> dict[str, Any]:
            k = _org_key(x.organization) if x.organization else None
            return {
                "person_id": people.get(x.person_email) if x.person_email else None,
                "organization_id": org_ids.get(k) if k else None,
                "amount": x.amount,
                "currency": x.currency,
                "ordered_at": x.ordered_at,
            }

        uniq = list({x.source_id: x for x in orders}.values())
        new = [x for x in uniq if x.source_id not in lineage]
        ids = dict(lineage)
        if new:
            got = insert_ids(self.conn, o, [row(x) for x in new])
            ids.update(zip((x.source_id for x in new), got, strict=True))
        old = [x for x in uniq if x.source_id in lineage]
        if old:
            ups = [row(x) | {"b_id": lineage[x.source_id]} for x in old]
            cols: dict[str, Any] = {c: bindparam(c) for c in ups[0] if c != "b_id"}
            executemany(self.conn, update(o).where(o.id == bindparam("b_id")).values(cols), ups)
        self._count("order", len(new), len(old))
        self._record_lineage(
            "order", [(x.source_id, x.payload_hash, ids[x.source_id]) for x in orders]
        )


_ORG_KEEP = ("corporate_number", "industry", "size", "address", "phone", "owner_id")


def _fold_org_updates(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One update per company instead of one per record naming it.

    Equivalent to applying the records' updates in order: plain columns take the last
    value, ``coalesce`` columns the last non-null one (else the stored value stays). An
    export where fifty contacts share a company then updates it once, not fifty times.
    """
    merged: dict[int, dict[str, Any]] = {}
    for row in rows:
        prev = merged.get(row["b_id"])
        if prev is None:
            merged[row["b_id"]] = dict(row)
            continue
        for col, value in row.items():
            if col not in _ORG_KEEP or value is not None:
                prev[col] = value
    return list(merged.values())


def _dedupe(rows: list[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for row in rows:
        k = tuple(row[c] for c in key)
        if k not in seen:
            seen.add(k)
            out.append(row)
    return out


def live_source_ids(conn: Connection, key: StreamKey) -> Iterable[str]:
    """Every live source id of a stream, streamed (for vanished-row detection)."""
    sr = t.SourceRecord
    # Per-statement option: ``conn.execution_options()`` would switch the whole connection to
    # server-side cursors, and PostgreSQL cannot DECLARE a cursor for the UPDATEs that follow.
    result = conn.execute(
        select(sr.source_id)
        .where(
            sr.connector == key.connector,
            sr.stream == key.stream,
            sr.deleted_at.is_(None),
            sr.payload_hash != "",  # people first seen as mail participants are not rows
        )
        .distinct(),
        execution_options={"yield_per": 5000},
    )
    for (sid,) in result:
        yield sid


__all__ = [
    "PageStats",
    "StreamKey",
    "apply_page",
    "live_source_ids",
    "mark_deleted",
    "unchanged_ids",
]
