"""Organizations and people in the write path: one row per source record, never merged.

A mixin of the page writer (``warehouse.write.store_writer``), split from it by noun.

Records stay records. Each source row (or mail participant) is its own ``person`` or
``organization`` row, found again only through its own lineage (connector, stream, source
id); nothing is looked up by mail address, 法人番号, domain or name at write time. Two rows
that give one team mailbox, one 法人番号 or one company name are the resolver's to link, with
evidence, and a conflict on such a value can never fail a stream.

A company a record only *refers to* (a contact's 会社名, a mail participant's domain, a
deal's account) is the record of the same source row when that row describes one;
otherwise a reference record of this stream, keyed by everything the reference says, so the
same reference gives the same record whatever order rows arrive in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.sql import bindparam, func

from warehouse import records as r
from warehouse import schema as t
from warehouse.identity.crosswalk import record_key
from warehouse.identity.keys.normalize import email_domain, normalize_org_name
from warehouse.write.bulk import executemany, insert_ids, insert_ignore_fast
from warehouse.write.bulk_pg import insert_ignore_rows
from warehouse.write.store_base import WriterBase, _dedupe, _select_in


def ref_source_id(ref: r.OrgRef) -> str | None:
    """The source id of a reference record: everything the reference says, in one string."""
    if not (ref.name or ref.domain or ref.corporate_number):
        return None
    return f"ref:{ref.corporate_number or ''}|{ref.domain or ''}|{ref.name or ''}"[:500]


class PartyWriter(WriterBase):
    """Companies and people of one page."""

    def _key(self, entity: str, source_id: str) -> str:
        return record_key(entity, self.key.connector, self.key.stream, source_id)

    # -- organizations -------------------------------------------------------------------
    def organizations(self, orgs: Sequence[r.Organization]) -> None:
        """Each record its own company row; a re-read record updates its own row only."""
        uniq = list({x.source_id: x for x in orgs}.values())  # a repeat in a page: last wins
        lineage = self._lineage("organization", [x.source_id for x in uniq])
        staff = self.staff_ids([x.owner_email for x in uniq if x.owner_email], {})

        def row(x: r.Organization) -> dict[str, Any]:
            return {
                "name": x.name,
                "name_normalized": normalize_org_name(x.name),
                "domain": x.domain,
                "corporate_number": x.corporate_number,
                "industry": x.industry,
                "size": x.size,
                "address": x.address,
                "phone": x.phone,
                "owner_id": staff.get(x.owner_email) if x.owner_email else None,
                "attributes": dict(x.attributes),
                "updated_at": self.ts,
            }

        new = [x for x in uniq if x.source_id not in lineage]
        ids = dict(lineage)
        if new:
            rows = [
                row(x)
                | {"created_at": self.ts, "record_key": self._key("organization", x.source_id)}
                for x in new
            ]
            ids.update(
                zip(
                    (x.source_id for x in new),
                    insert_ids(self.conn, t.Organization, rows),
                    strict=True,
                )
            )
        old = [x for x in uniq if x.source_id in lineage]
        if old:
            o = t.Organization
            ups = [row(x) | {"b_id": lineage[x.source_id]} for x in old]
            self._update_rows(o, ups)
        self._count("organization", len(new), len(old))
        self._page_orgs.update(ids)
        self._record_lineage(
            "organization",
            [(x.source_id, x.payload_hash, ids[x.source_id]) for x in orgs],
            fresh=[ids[x.source_id] for x in new],
        )

    def org_refs(self, items: Sequence[tuple[str, r.OrgRef | None]]) -> list[int | None]:
        """The company row each (source id, reference) points at, in order.

        The row of the same source record when it described a company (this page or an
        earlier one), else this stream's reference record for exactly that reference.
        """
        same = {sid for sid, ref in items if ref is not None and sid not in self._page_orgs}
        if same:
            self._page_orgs.update(self._lineage("organization", sorted(same)))
        refs: dict[str, r.OrgRef] = {}
        for sid, ref in items:
            if ref is not None and sid not in self._page_orgs:
                rsid = ref_source_id(ref)
                if rsid is not None and rsid not in self._ref_orgs:
                    refs[rsid] = ref
        if refs:
            self._ref_orgs.update(self._lineage("organization", sorted(refs)))
            missing = sorted(k for k in refs if k not in self._ref_orgs)
            if missing:
                rows: list[dict[str, Any]] = []
                for k in missing:
                    ref = refs[k]
                    name = ref.name or ref.domain or ref.corporate_number or "?"
                    rows.append(
                        {
                            "record_key": self._key("organization", k),
                            "name": name,
                            "name_normalized": normalize_org_name(name),
                            "domain": ref.domain,
                            "corporate_number": ref.corporate_number,
                            "attributes": {},
                            "created_at": self.ts,
                            "updated_at": self.ts,
                        }
                    )
                got = insert_ids(self.conn, t.Organization, rows)
                self._ref_orgs.update(zip(missing, got, strict=True))
                self._count("organization", len(got), 0)
                self._record_lineage(
                    "organization", [(k, "", i) for k, i in zip(missing, got, strict=True)], got
                )
        out: list[int | None] = []
        for sid, ref in items:
            if ref is None:
                out.append(None)
            elif sid in self._page_orgs:
                out.append(self._page_orgs[sid])
            else:
                rsid = ref_source_id(ref)
                out.append(self._ref_orgs.get(rsid) if rsid else None)
        return out

    # -- people --------------------------------------------------------------------------
    def person_ids_by_email(self, emails: Iterable[str]) -> dict[str, int]:
        """For references by address (a deal's contact, an order's buyer): the oldest live
        record giving that address. Any record will do: the resolver puts the reference in
        the right customer, since all records of one address meet in its evidence."""
        pe, p = t.PersonEmail, t.Person
        return {
            str(e): int(i)
            for e, i in _select_in(
                self.conn,
                lambda part: (
                    select(pe.email, func.min(pe.person_id))
                    .join(p, p.id == pe.person_id)
                    .where(pe.email.in_(part), p.deleted_at.is_(None))
                    .group_by(pe.email)
                ),
                set(emails),
            )
        }

    def people(self, people: Sequence[r.Person]) -> None:
        uniq = list({x.source_id: x for x in people}.values())
        lineage = self._lineage("person", [x.source_id for x in uniq])
        org_ids = self.org_refs([(x.source_id, self._person_org_ref(x)) for x in uniq])
        staff = self.staff_ids([x.owner_email for x in uniq if x.owner_email], {})
        rows = [self._person_row(x, oid, staff) for x, oid in zip(uniq, org_ids, strict=True)]
        new = [i for i, x in enumerate(uniq) if x.source_id not in lineage]
        ids = dict(lineage)
        if new:
            got = insert_ids(
                self.conn,
                t.Person,
                [
                    rows[i]
                    | {"created_at": self.ts, "record_key": self._key("person", uniq[i].source_id)}
                    for i in new
                ],
            )
            ids.update(zip((uniq[i].source_id for i in new), got, strict=True))
        old = [i for i, x in enumerate(uniq) if x.source_id in lineage]
        if old:
            p = t.Person
            ups = [rows[i] | {"b_id": lineage[uniq[i].source_id]} for i in old]
            self._update_rows(p, ups)
        self._count("person", len(new), len(old))
        self._page_people.update(ids)
        self._link_contacts(
            uniq, [ids[x.source_id] for x in uniq], {lineage[uniq[i].source_id] for i in old}
        )
        self._record_lineage(
            "person",
            [(x.source_id, x.payload_hash, ids[x.source_id]) for x in people],
            fresh=[ids[uniq[i].source_id] for i in new],
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
        self, x: r.Person, org_id: int | None, staff: Mapping[str, int]
    ) -> dict[str, Any]:
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
            "organization_id": org_id,
            "owner_id": staff.get(x.owner_email) if x.owner_email else None,
            "lifecycle_stage": x.lifecycle_stage,
            "attributes": dict(x.attributes),
            "updated_at": self.ts,
        }

    def _link_contacts(
        self, people: Sequence[r.Person], ids: Sequence[int], again: Collection[int] = ()
    ) -> None:
        """Each record's addresses and phones. A re-read record (``again``: its row ids)
        gives them anew, as its source says now: the pairs it no longer gives go, the ones
        it still gives stay where they are (nothing rewritten when nothing changed)."""
        emails = _dedupe(
            [
                {"person_id": pid, "email": e}
                for x, pid in zip(people, ids, strict=True)
                for e in x.emails
            ],
            ("person_id", "email"),
        )
        phones = _dedupe(
            [
                {"person_id": pid, "phone": ph}
                for x, pid in zip(people, ids, strict=True)
                for ph in x.phones
            ],
            ("person_id", "phone"),
        )
        if again:  # pairs a re-read record still gives are stored: nothing to insert
            kept = self._prune(t.PersonEmail, "email", emails, sorted(again))
            emails = [row for row in emails if (row["person_id"], row["email"]) not in kept]
            kept = self._prune(t.PersonPhone, "phone", phones, sorted(again))
            phones = [row for row in phones if (row["person_id"], row["phone"]) not in kept]
        insert_ignore_rows(self.conn, t.table(t.PersonEmail), emails, ["person_id", "email"])
        insert_ignore_rows(self.conn, t.table(t.PersonPhone), phones, ["person_id", "phone"])

    def _prune(
        self, model: Any, col: str, keep: Sequence[dict[str, Any]], ids: list[int]
    ) -> set[tuple[Any, Any]]:
        """Delete the (person, value) pairs of ``ids`` that ``keep`` does not hold; return
        the stored pairs that stay (the caller need not insert those again)."""
        table = t.table(model)
        held = {(row["person_id"], row[col]) for row in keep}
        stored = _select_in(
            self.conn,
            lambda part: select(table.c.person_id, table.c[col]).where(table.c.person_id.in_(part)),
            ids,
        )
        kept = {(pid, val) for pid, val in stored if (pid, val) in held}
        stale = [{"b_pid": pid, "b_val": val} for pid, val in stored if (pid, val) not in held]
        if stale:
            executemany(
                self.conn,
                delete(table).where(
                    table.c.person_id == bindparam("b_pid"), table.c[col] == bindparam("b_val")
                ),
                stale,
            )
        return kept

    def ensure_people(self, contacts: Mapping[str, str | None]) -> dict[str, int]:
        """This stream's participant record for each address (``address:<email>``), made on
        first sight with the name the message gave; the resolver links it to the customer."""
        sids = {f"address:{e}": e for e in contacts}
        known = {sids[s]: i for s, i in self._lineage("person", sorted(sids)).items()}
        missing = sorted(e for e in contacts if e not in known)
        if missing:
            org_ids = self.org_refs(
                [
                    (f"address:{e}", r.OrgRef(domain=d) if (d := email_domain(e)) else None)
                    for e in missing
                ]
            )
            rows: list[dict[str, Any]] = [
                {
                    "record_key": self._key("person", f"address:{e}"),
                    "full_name": contacts[e],
                    "primary_email": e,
                    "organization_id": oid,
                    "attributes": {},
                    "created_at": self.ts,
                    "updated_at": self.ts,
                }
                for e, oid in zip(missing, org_ids, strict=True)
            ]
            ids = insert_ids(self.conn, t.Person, rows)
            insert_ignore_fast(
                self.conn,
                t.table(t.PersonEmail),
                [{"person_id": i, "email": e} for e, i in zip(missing, ids, strict=True)],
                ["person_id", "email"],
            )
            known.update(zip(missing, ids, strict=True))
            self._count("person", len(ids), 0)
            self._record_lineage(
                "person", [(f"address:{e}", "", i) for e, i in zip(missing, ids, strict=True)], ids
            )
        return known
