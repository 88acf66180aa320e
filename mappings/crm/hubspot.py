"""HubSpot CRM objects (``{"id", "properties", ...}`` plus ``_``-prefixed enrichment) → records.

The connector attaches what a mapping cannot fetch: ``_owner_email`` (owners are staff users
by email), ``_stage`` (the deal stage's label and closed/won flags from its pipeline) and
associations (``_companies``, ``_contacts``, ``_deals``). Field maps name HubSpot properties.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kizuna.errors import BadRecord
from mappings.crm.common import (
    MapOptions,
    as_date,
    as_datetime,
    attributes,
    decimal,
    email_or_none,
    emails,
    is_internal,
    mapped,
    phones,
    required_id,
    text,
)
from mappings.crm.hubspot_catalog import line_item, product
from warehouse import records as r


def _props(raw: Mapping[str, Any]) -> dict[str, Any]:
    p = raw.get("properties")
    return dict(p) if isinstance(p, Mapping) else {}


def _sid(raw: Mapping[str, Any]) -> str:
    return required_id(raw.get("id"), "record has no id")


def _first(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    items = raw.get(key) or []
    return dict(items[0]) if items else {}


def company(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    sid, p = _sid(raw), _props(raw)
    fm = opts.fmap("companies")
    m = mapped(p, fm)
    name = text(m.get("name", p.get("name"))) or text(p.get("domain"))
    if not name:
        raise BadRecord("company has neither name nor domain", source_id=sid)
    address = " ".join(
        x for x in (text(p.get(k)) for k in ("zip", "state", "city", "address")) if x
    )
    phone = phones([p.get("phone")], opts.phone_region)
    return [
        r.Organization(
            source_id=sid,
            name=name,
            domain=text(m.get("domain", p.get("domain"))),
            corporate_number=text(m.get("corporate_number")),
            industry=text(m.get("industry", p.get("industry"))),
            size=text(m.get("size", p.get("numberofemployees"))),
            address=text(m.get("address")) or address or None,
            phone=phone[0] if phone else None,
            owner_email=email_or_none(raw.get("_owner_email")),
            attributes=attributes(p, fm),
        )
    ]


def contact(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    sid, p = _sid(raw), _props(raw)
    fm = opts.fmap("contacts")
    m = mapped(p, fm)
    comp = _first(raw, "_companies")
    org_name = text(comp.get("name")) or text(p.get("company"))
    org_domain = text(comp.get("domain"))
    org = r.OrgRef(name=org_name, domain=org_domain) if org_name or org_domain else None
    return [
        r.Person(
            source_id=sid,
            family_name=text(m.get("family_name", p.get("lastname"))),
            given_name=text(m.get("given_name", p.get("firstname"))),
            family_name_kana=text(m.get("family_name_kana")),
            given_name_kana=text(m.get("given_name_kana")),
            emails=emails([m.get("email", p.get("email"))]),
            phones=phones([p.get("phone"), p.get("mobilephone")], opts.phone_region),
            title=text(m.get("title", p.get("jobtitle"))),
            department=text(m.get("department")),
            organization=org,
            owner_email=email_or_none(raw.get("_owner_email")),
            lifecycle_stage=text(m.get("lifecycle_stage", p.get("lifecyclestage"))),
            attributes=attributes(p, fm),
        )
    ]


def deal(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    sid, p = _sid(raw), _props(raw)
    fm = opts.fmap("deals")
    m = mapped(p, fm)
    stage_id = text(p.get("dealstage"))
    meta = raw.get("_stage") or {}
    stage = text(m.get("stage")) or text(meta.get("label")) or stage_id
    status = "open"
    if meta.get("closed"):
        status = "won" if meta.get("won") else "lost"
    comp = _first(raw, "_companies")
    org = (
        r.OrgRef(name=text(comp.get("name")), domain=text(comp.get("domain")))
        if comp.get("name") or comp.get("domain")
        else None
    )
    name = text(p.get("dealname"))
    if not name:
        raise BadRecord("deal has no dealname", source_id=sid)
    attrs = attributes(p, fm)
    if meta.get("pipeline"):
        attrs["pipeline"] = meta["pipeline"]
    return [
        r.Deal(
            source_id=sid,
            name=name,
            organization=org,
            contact_email=email_or_none(_first(raw, "_contacts").get("email")),
            stage=stage,
            amount=decimal(m.get("amount", p.get("amount")), "amount", sid),
            currency=text(p.get("deal_currency_code")) or opts.currency,
            probability=meta.get("probability"),
            expected_close=as_date(p.get("closedate"), "closedate", sid),
            status=status,
            owner_email=email_or_none(raw.get("_owner_email")),
            changed_at=as_datetime(p.get(f"hs_date_entered_{stage_id}"), "hs_date_entered", sid)
            if stage_id
            else None,
            attributes=attrs,
        )
    ]


_KINDS: dict[str, r.ActivityKind] = {
    "meetings": "meeting",
    "calls": "call",
    "emails": "email",
    "notes": "note",
    "tasks": "task",
}
_SUBJECT = {
    "meetings": "hs_meeting_title",
    "calls": "hs_call_title",
    "emails": "hs_email_subject",
    "tasks": "hs_task_subject",
}
_BODY = {
    "meetings": "hs_meeting_body",
    "calls": "hs_call_body",
    "emails": "hs_email_text",
    "notes": "hs_note_body",
    "tasks": "hs_task_body",
}


def engagement(obj: str) -> Callable[[Mapping[str, Any], MapOptions], list[r.Record]]:
    def mapper(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
        sid, p = _sid(raw), _props(raw)
        when = as_datetime(
            p.get("hs_meeting_start_time") or p.get("hs_timestamp"), "hs_timestamp", sid
        ) or as_datetime(raw.get("createdAt"), "createdAt", sid)
        if when is None:
            raise BadRecord(f"{obj} has no hs_timestamp", source_id=sid)
        parts: list[r.Participant] = []
        for c in raw.get("_contacts") or []:
            e = email_or_none(c.get("email"))
            if e:
                name = " ".join(x for x in (text(c.get("lastname")), text(c.get("firstname"))) if x)
                parts.append(
                    r.Participant(
                        email=e, name=name or None, role="attendee", internal=is_internal(e, opts)
                    )
                )
        owner = email_or_none(raw.get("_owner_email"))
        if owner:
            parts.append(r.Participant(email=owner, role="organizer", internal=True))
        direction = str(p.get("hs_call_direction") or p.get("hs_email_direction") or "").upper()
        deal_ids = [str(d["id"]) for d in raw.get("_deals") or []]
        body = text(p.get(_BODY.get(obj, "")))
        return [
            r.Activity(
                source_id=sid,
                key=f"{opts.source}:{obj}:{sid}",
                kind=_KINDS[obj],
                occurred_at=when,
                ends_at=as_datetime(p.get("hs_meeting_end_time"), "hs_meeting_end_time", sid),
                direction="inbound"
                if "INBOUND" in direction or "INCOMING" in direction
                else ("outbound" if direction else None),
                subject=text(p.get(_SUBJECT.get(obj, ""))),
                snippet=body[:500] if body else None,
                location=text(p.get("hs_meeting_location")),
                participants=parts,
                deal_source_id=deal_ids[0] if deal_ids else None,
                attributes=attributes(p, opts.fmap(obj)),
            )
        ]

    return mapper


MAPPERS: dict[str, Callable[[Mapping[str, Any], MapOptions], Sequence[r.Record]]] = {
    "companies": company,
    "contacts": contact,
    "deals": deal,
    **{e: engagement(e) for e in _KINDS},
    "products": product,
    "line_items": line_item,
}
