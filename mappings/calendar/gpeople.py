"""A People API ``Person`` (a Google contact or "other contact") → a unified Person.

Japanese contacts keep their reading in ``phoneticFamilyName``/``phoneticGivenName`` (the
furigana fields of Google Contacts): they become the kana names. Phones use Google's
``canonicalForm`` (E.164) when it has one, else are normalised in the company's region.
Contacts whose every address is on an own domain are staff, not customers, and are skipped.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any

from kizuna.errors import BadRecord
from mappings.mail.message import is_internal, own_domain_set
from warehouse.identity.keys.normalize import normalize_email, normalize_phone
from warehouse.records import OrgRef, Person


def _primary(items: Any) -> dict[str, Any]:
    """The field Google marks primary, else the first."""
    if not isinstance(items, list) or not items:
        return {}
    for item in items:
        if isinstance(item, dict) and (item.get("metadata") or {}).get("primary"):
            return item
    first = items[0]
    return first if isinstance(first, dict) else {}


def _text(value: Any) -> str | None:
    s = str(value).strip() if value is not None else ""
    return s or None


def _birth_date(items: Any) -> date | None:
    d = _primary(items).get("date") or {}
    try:
        if d.get("year") and d.get("month") and d.get("day"):
            return date(int(d["year"]), int(d["month"]), int(d["day"]))
    except (TypeError, ValueError):
        return None
    return None


def person_record(
    person: dict[str, Any], *, own_domains: Collection[str], phone_region: str = "JP"
) -> list[Person]:
    """The contact as a Person, or nothing for staff; ``BadRecord`` for an empty contact."""
    rn = str(person.get("resourceName") or "")
    if not rn:
        raise BadRecord("contact without a resourceName")
    emails: list[str] = []
    for e in person.get("emailAddresses") or []:
        n = normalize_email(str((e or {}).get("value") or ""))
        if n and n not in emails:
            emails.append(n)
    own = own_domain_set(own_domains)
    if emails and all(is_internal(e, own) for e in emails):
        return []
    phones: list[str] = []
    for p in person.get("phoneNumbers") or []:
        p = p or {}
        n = _text(p.get("canonicalForm")) or normalize_phone(
            str(p.get("value") or ""), phone_region
        )
        if n and n not in phones:
            phones.append(n)
    name = _primary(person.get("names"))
    org = _primary(person.get("organizations"))
    full = _text(name.get("displayName")) or _text(name.get("unstructuredName"))
    if not (emails or phones or full):
        raise BadRecord(f"contact {rn} has no name, address or phone", source_id=rn)
    gender = _text(_primary(person.get("genders")).get("value"))
    return [
        Person(
            source_id=rn,
            family_name=_text(name.get("familyName")),
            given_name=_text(name.get("givenName")),
            family_name_kana=_text(name.get("phoneticFamilyName")),
            given_name_kana=_text(name.get("phoneticGivenName")),
            full_name=full,
            emails=emails,
            phones=phones,
            title=_text(org.get("title")),
            department=_text(org.get("department")),
            gender=gender if gender in ("male", "female") else None,
            birth_date=_birth_date(person.get("birthdays")),
            organization=OrgRef(name=_text(org.get("name"))) if _text(org.get("name")) else None,
            attributes={"google_contact": rn},
        )
    ]
