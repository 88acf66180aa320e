"""Organizations and people in the write path: find-or-create by key, update, link.

A mixin of the page writer (``warehouse.store_writer``), split from it by noun.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.sql import bindparam, func

from warehouse import records as r
from warehouse import schema as t
from warehouse.bulk import executemany, insert_ids, insert_ignore_fast
from warehouse.identity.normalize import email_domain, normalize_org_name
from warehouse.store_base import (
    WriterBase,
    _dedupe,
    _name_key,
    _org_key,
    _select_in,
)
from warehouse.upsert import insert_ignore


class PartyWriter(WriterBase):
    """Companies and people of one page."""

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
