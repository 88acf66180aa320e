"""kintone records (``{field code: {"type", "value"}}``) → unified records, as the admin maps.

kintone apps have no fixed schema, so each app says which unified entity it holds and which
field code feeds which unified field (codes are often Japanese: ``会社名``, ``担当者``).
User fields (``USER_SELECT``, ``CREATOR``, ``MODIFIER``) carry ``{"code", "name"}``; a login code
that is not an address becomes one with the app's ``user_domain``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kizuna.errors import BadRecord
from mappings.crm import kintone_catalog as catalog
from mappings.crm.common import (
    MapOptions,
    as_date,
    as_datetime,
    as_float,
    attributes,
    decimal,
    email_or_none,
    emails,
    is_internal,
    phones,
    required_id,
    text,
)
from warehouse import records as r

Entity = Literal["organization", "person", "deal", "activity", "order", "product", "deal_line_item"]


@dataclass(frozen=True)
class AppMapping:
    entity: Entity
    field_map: Mapping[str, str]
    user_domain: str | None = None
    activity_kind: r.ActivityKind = "meeting"
    won_stages: tuple[str, ...] = ()
    lost_stages: tuple[str, ...] = ()
    key_prefix: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    line_table: str | None = None
    """A deal app's 明細 table (SUBTABLE field code), mapped by ``line_map``."""
    line_map: Mapping[str, str] = field(default_factory=dict)
    tax_included: bool = False
    """The app's prices (products, lines) are 税込."""


def get(raw: Mapping[str, Any], code: str) -> Any:
    f = raw.get(code)
    if not isinstance(f, Mapping):
        return None
    v = f.get("value")
    if isinstance(v, list):
        if not v:
            return None
        if isinstance(v[0], Mapping):  # user / organization / group selections
            return v[0].get("code")
        return v[0] if len(v) == 1 else ", ".join(str(x) for x in v)
    if isinstance(v, Mapping):
        return v.get("code")
    return v


def _user(raw: Mapping[str, Any], code: str | None, app: AppMapping) -> str | None:
    if not code:
        return None
    v = text(get(raw, code))
    if not v:
        return None
    if "@" not in v and app.user_domain:
        v = f"{v}@{app.user_domain}"
    return email_or_none(v)


def _sid(raw: Mapping[str, Any]) -> str:
    return required_id(get(raw, "$id"), "record has no $id")


def map_record(raw: Mapping[str, Any], app: AppMapping, opts: MapOptions) -> list[r.Record]:
    sid = _sid(raw)
    fm = app.field_map
    if app.entity == "product":
        return catalog.product(raw, fm, get, sid, app.tax_included)
    if app.entity == "deal_line_item":
        return catalog.line_record(raw, fm, get, sid, app.tax_included)

    def f(target: str) -> Any:
        code = fm.get(target)
        return get(raw, code) if code else None

    attrs = attributes(raw, fm, get)
    owner = _user(raw, fm.get("owner_email"), app)
    org = None
    org_name, org_domain = text(f("organization")), text(f("organization_domain"))
    if org_name or org_domain:
        org = r.OrgRef(
            name=org_name, domain=org_domain, corporate_number=text(f("corporate_number"))
        )

    if app.entity == "organization":
        name = text(f("name"))
        if not name:
            raise BadRecord(f"no company name in field {fm.get('name')!r}", source_id=sid)
        phone = phones([f("phone")], opts.phone_region)
        return [
            r.Organization(
                source_id=sid,
                name=name,
                domain=text(f("domain")),
                corporate_number=text(f("corporate_number")),
                industry=text(f("industry")),
                size=text(f("size")),
                address=text(f("address")),
                phone=phone[0] if phone else None,
                owner_email=owner,
                attributes=attrs,
            )
        ]
    if app.entity == "person":
        return [
            r.Person(
                source_id=sid,
                family_name=text(f("family_name")),
                given_name=text(f("given_name")),
                family_name_kana=text(f("family_name_kana")),
                given_name_kana=text(f("given_name_kana")),
                full_name=text(f("full_name")),
                emails=emails([f("email"), f("email2")]),
                phones=phones([f("phone"), f("mobile")], opts.phone_region),
                title=text(f("title")),
                department=text(f("department")),
                birth_date=as_date(f("birth_date"), fm.get("birth_date", ""), sid),
                organization=org,
                owner_email=owner,
                lifecycle_stage=text(f("lifecycle_stage")),
                attributes=attrs,
            )
        ]
    if app.entity == "deal":
        name = text(f("name"))
        if not name:
            raise BadRecord(f"no deal name in field {fm.get('name')!r}", source_id=sid)
        stage = text(f("stage"))
        status: Literal["open", "won", "lost"] = "open"
        if stage in app.won_stages:
            status = "won"
        elif stage in app.lost_stages:
            status = "lost"
        return [
            r.Deal(
                source_id=sid,
                name=name,
                organization=org,
                contact_email=email_or_none(f("contact_email")),
                stage=stage,
                amount=decimal(f("amount"), fm.get("amount", ""), sid),
                currency=text(f("currency")) or opts.currency,
                probability=as_float(f("probability"), fm.get("probability", ""), sid),
                expected_close=as_date(f("expected_close"), fm.get("expected_close", ""), sid),
                status=status,
                owner_email=owner,
                changed_at=as_datetime(f("changed_at"), fm.get("changed_at", ""), sid, opts.tz),
                attributes=attrs,
            ),
            *(
                catalog.table_lines(raw, app.line_table, app.line_map, get, sid, app.tax_included)
                if app.line_table
                else []
            ),
        ]
    if app.entity == "activity":
        when = as_datetime(f("occurred_at"), fm.get("occurred_at", ""), sid, opts.tz)
        if when is None:
            raise BadRecord(f"no date in field {fm.get('occurred_at')!r}", source_id=sid)
        parts: list[r.Participant] = []
        for e in emails([f("contact_email")]):
            parts.append(r.Participant(email=e, role="attendee", internal=is_internal(e, opts)))
        if owner:
            parts.append(r.Participant(email=owner, role="organizer", internal=True))
        body = text(f("snippet"))
        return [
            r.Activity(
                source_id=sid,
                key=f"{app.key_prefix or opts.source}:{sid}",
                kind=app.activity_kind,
                occurred_at=when,
                ends_at=as_datetime(f("ends_at"), fm.get("ends_at", ""), sid, opts.tz),
                subject=text(f("subject")),
                snippet=body[:500] if body else None,
                location=text(f("location")),
                participants=parts,
                deal_source_id=text(f("deal_source_id")),
                attributes=attrs,
            )
        ]
    amount = decimal(f("amount"), fm.get("amount", ""), sid)
    when = as_datetime(f("ordered_at"), fm.get("ordered_at", ""), sid, opts.tz)
    if amount is None or when is None:
        raise BadRecord("an order needs an amount and a date", source_id=sid)
    return [
        r.Order(
            source_id=sid,
            person_email=email_or_none(f("person_email")),
            organization=org,
            amount=amount,
            currency=text(f("currency")) or opts.currency,
            ordered_at=when,
        )
    ]
