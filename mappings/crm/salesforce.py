"""Salesforce rows (flattened: ``Owner.Email``, ``Account.Name``) → unified records.

REST and Bulk rows have one shape (see ``connectors.crm.salesforce_values.flatten``) but Bulk
values are text, so every value is parsed leniently (``"1500.0"`` and ``1500.0`` are one amount).
Owners are staff users by ``Owner.Email``; custom fields arrive through the field map.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kizuna.errors import BadRecord
from mappings.crm.common import (
    MapOptions,
    as_bool,
    as_date,
    as_datetime,
    as_float,
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
from mappings.crm.salesforce_catalog import opportunity_line_item, pricebook_entry
from warehouse import records as r

OPPORTUNITY_PREFIX = "006"


def _sid(raw: Mapping[str, Any]) -> str:
    return required_id(raw.get("Id"), "row has no Id")


def _org(name: Any, website: Any) -> r.OrgRef | None:
    n, w = text(name), text(website)
    if not n and not w:
        return None
    return r.OrgRef(name=n, domain=w)


def account(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    sid = _sid(raw)
    fm = opts.fmap("Account")
    m = mapped(raw, fm)
    parts = [raw.get(k) for k in ("BillingPostalCode", "BillingState", "BillingCity")]
    parts.append(raw.get("BillingStreet"))
    address = " ".join(p for p in (text(x) for x in parts) if p) or None
    employees = text(raw.get("NumberOfEmployees"))
    name = text(m.get("name", raw.get("Name")))
    if not name:
        raise BadRecord("account has no Name", source_id=sid)
    phone = phones([m.get("phone", raw.get("Phone"))], opts.phone_region)
    return [
        r.Organization(
            source_id=sid,
            name=name,
            domain=text(m.get("domain", raw.get("Website"))),
            corporate_number=text(m.get("corporate_number")),
            industry=text(m.get("industry", raw.get("Industry"))),
            size=text(m.get("size", employees.split(".")[0] if employees else None)),
            address=text(m.get("address", address)),
            phone=phone[0] if phone else None,
            owner_email=email_or_none(raw.get("Owner.Email")),
            attributes=attributes(raw, fm),
        )
    ]


def _person(raw: Mapping[str, Any], obj: str, opts: MapOptions, **extra: Any) -> r.Person:
    sid = _sid(raw)
    fm = opts.fmap(obj)
    m = mapped(raw, fm)
    return r.Person(
        source_id=sid,
        family_name=text(m.get("family_name", raw.get("LastName"))),
        given_name=text(m.get("given_name", raw.get("FirstName"))),
        family_name_kana=text(m.get("family_name_kana")),
        given_name_kana=text(m.get("given_name_kana")),
        emails=emails([m.get("email", raw.get("Email"))]),
        phones=phones(
            [m.get("phone", raw.get("Phone")), raw.get("MobilePhone")], opts.phone_region
        ),
        title=text(m.get("title", raw.get("Title"))),
        department=text(m.get("department", raw.get("Department"))),
        birth_date=as_date(m.get("birth_date", raw.get("Birthdate")), "Birthdate", sid),
        owner_email=email_or_none(raw.get("Owner.Email")),
        lifecycle_stage=text(m.get("lifecycle_stage", extra.pop("lifecycle_stage", None))),
        attributes=attributes(raw, fm),
        **extra,
    )


def contact(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    org = _org(raw.get("Account.Name"), raw.get("Account.Website"))
    return [_person(raw, "Contact", opts, organization=org, lifecycle_stage="contact")]


def lead(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    org = _org(raw.get("Company"), raw.get("Website"))
    return [_person(raw, "Lead", opts, organization=org, lifecycle_stage="lead")]


def opportunity(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    sid = _sid(raw)
    fm = opts.fmap("Opportunity")
    m = mapped(raw, fm)
    stage = text(m.get("stage", raw.get("StageName")))
    history = list(raw.get("_stage_history") or [])
    changed = None
    # The time the current stage was entered: the latest history step into it.
    for step in reversed(history):
        if step.get("stage") == stage:
            changed = as_datetime(step.get("at"), "OpportunityHistory.CreatedDate", sid)
            break
    if changed is None:
        changed = as_datetime(raw.get("LastStageChangeDate"), "LastStageChangeDate", sid)
    status = "open"
    if as_bool(raw.get("IsClosed")):
        status = "won" if as_bool(raw.get("IsWon")) else "lost"
    attrs = attributes(raw, fm)
    if history:
        attrs["stage_history"] = history
    name = text(raw.get("Name"))
    if not name:
        raise BadRecord("opportunity has no Name", source_id=sid)
    return [
        r.Deal(
            source_id=sid,
            name=name,
            organization=_org(raw.get("Account.Name"), raw.get("Account.Website")),
            contact_email=email_or_none(m.get("contact_email")),
            stage=stage,
            amount=decimal(m.get("amount", raw.get("Amount")), "Amount", sid),
            currency=text(raw.get("CurrencyIsoCode")) or opts.currency,
            probability=as_float(raw.get("Probability"), "Probability", sid),
            expected_close=as_date(raw.get("CloseDate"), "CloseDate", sid),
            status=status,
            owner_email=email_or_none(raw.get("Owner.Email")),
            changed_at=changed,
            attributes=attrs,
        )
    ]


def _participants(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Participant]:
    out: list[r.Participant] = []
    who = email_or_none(raw.get("Who.Email"))
    if who:
        out.append(
            r.Participant(
                email=who,
                name=text(raw.get("Who.Name")),
                role="attendee",
                internal=is_internal(who, opts),
            )
        )
    owner = email_or_none(raw.get("Owner.Email"))
    if owner:
        out.append(r.Participant(email=owner, role="organizer", internal=True))
    return out


def _deal_link(raw: Mapping[str, Any]) -> str | None:
    what = text(raw.get("WhatId"))
    return what if what and what.startswith(OPPORTUNITY_PREFIX) else None


_SUBTYPES: dict[str, r.ActivityKind] = {"call": "call", "email": "email", "listemail": "email"}


def task(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    sid = _sid(raw)
    fm = opts.fmap("Task")
    when = as_datetime(raw.get("ActivityDate"), "ActivityDate", sid, opts.tz) or as_datetime(
        raw.get("CreatedDate"), "CreatedDate", sid
    )
    if when is None:
        raise BadRecord("task has neither ActivityDate nor CreatedDate", source_id=sid)
    kind: r.ActivityKind = _SUBTYPES.get(str(raw.get("TaskSubtype") or "").lower(), "task")
    attrs = attributes(raw, fm)
    if raw.get("Status"):
        attrs["status"] = raw.get("Status")
    return [
        r.Activity(
            source_id=sid,
            key=f"{opts.source}:Task:{sid}",
            kind=kind,
            occurred_at=when,
            direction="outbound",
            subject=text(raw.get("Subject")),
            snippet=(text(raw.get("Description")) or "")[:500] or None,
            participants=_participants(raw, opts),
            deal_source_id=_deal_link(raw),
            attributes=attrs,
        )
    ]


def event(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    sid = _sid(raw)
    start = as_datetime(raw.get("StartDateTime"), "StartDateTime", sid)
    if start is None:
        raise BadRecord("event has no StartDateTime", source_id=sid)
    return [
        r.Activity(
            source_id=sid,
            key=f"{opts.source}:Event:{sid}",
            kind="meeting",
            occurred_at=start,
            ends_at=as_datetime(raw.get("EndDateTime"), "EndDateTime", sid),
            subject=text(raw.get("Subject")),
            snippet=(text(raw.get("Description")) or "")[:500] or None,
            location=text(raw.get("Location")),
            participants=_participants(raw, opts),
            deal_source_id=_deal_link(raw),
            attributes=attributes(raw, opts.fmap("Event")),
        )
    ]


def nothing(raw: Mapping[str, Any], opts: MapOptions) -> list[r.Record]:
    """Objects read for the write side's diff only (Campaign, CampaignMember, User)."""
    return []


MAPPERS: dict[str, Callable[[Mapping[str, Any], MapOptions], Sequence[r.Record]]] = {
    "Account": account,
    "Contact": contact,
    "Lead": lead,
    "Opportunity": opportunity,
    "Task": task,
    "Event": event,
    "PricebookEntry": pricebook_entry,
    "OpportunityLineItem": opportunity_line_item,
}
