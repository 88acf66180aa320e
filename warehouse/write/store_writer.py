"""Deals, activities and orders in the write path, on top of companies and people."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.sql import bindparam

from warehouse import records as r
from warehouse import schema as t
from warehouse.write.bulk import executemany, insert_ids, insert_new_ids
from warehouse.write.store_base import IN_CHUNK, _dedupe, _select_in
from warehouse.write.store_parties import PartyWriter
from warehouse.write.upsert import chunks


class Writer(PartyWriter):
    """Bulk writes for one page; every method issues a handful of statements per page."""

    # -- deals ---------------------------------------------------------------------------
    def deals(self, deals: Sequence[r.Deal]) -> None:
        lineage = self._lineage("deal", [x.source_id for x in deals])
        orgs = dict(
            zip(
                (x.source_id for x in deals),
                self.org_refs([(x.source_id, x.organization) for x in deals]),
                strict=True,
            )
        )
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

        def contact(x: r.Deal) -> int | None:
            # The contact the same source row described, else any record of the address.
            if not x.contact_email:
                return None
            return self._page_people.get(x.source_id) or contacts.get(x.contact_email)

        def row(x: r.Deal) -> dict[str, Any]:
            return {
                "name": x.name,
                "organization_id": orgs[x.source_id],
                "person_id": contact(x),
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
            self._update_rows(d, ups)
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
            "deal",
            [(x.source_id, x.payload_hash, ids[x.source_id]) for x in deals],
            fresh=[ids[x.source_id] for x in uniq_new],
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
                "timeline": x.timeline,
                "body": x.body,
                "updated_at": self.ts,
            }

        new = [x for k, x in latest.items() if k not in existing]
        ids = {k: i for k, (i, _) in existing.items()}
        if new:
            rows = [row(x) | {"created_at": self.ts} for x in new]
            got, taken = insert_new_ids(self.conn, a, rows, "key")
            ids.update((x.key, i) for x, i in zip(new, got, strict=True) if i is not None)
            if taken:  # another stream wrote the same activity (one Message-ID) meanwhile
                existing.update(
                    (k, (i, rev))
                    for k, i, rev in _select_in(
                        self.conn,
                        lambda part: select(a.key, a.id, a.revision).where(a.key.in_(part)),
                        taken,
                    )
                )
                ids.update((k, existing[k][0]) for k in taken)
                new = [x for x in new if x.key not in taken]
        changed = [x for k, x in latest.items() if k in existing and x.revision >= existing[k][1]]
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
                if x.locator and not pt.internal:  # where a participant record is first seen
                    self.locators.setdefault(f"address:{pt.email}", x.locator)
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
        orgs = dict(
            zip(
                (x.source_id for x in orders),
                self.org_refs([(x.source_id, x.organization) for x in orders]),
                strict=True,
            )
        )
        o = t.Order

        def row(x: r.Order) -> dict[str, Any]:
            return {
                "person_id": people.get(x.person_email) if x.person_email else None,
                "organization_id": orgs[x.source_id],
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
            self._update_rows(o, ups)
        self._count("order", len(new), len(old))
        self._record_lineage(
            "order", [(x.source_id, x.payload_hash, ids[x.source_id]) for x in orders]
        )
