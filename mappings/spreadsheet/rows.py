"""A spreadsheet row → Organization, Person and Deal records, through a column map.

The column map says which unified field each header feeds (``person.email``,
``deal.amount``, ``attributes.会員ランク`` …). Common Japanese and English headers are known
out of the box (``DEFAULT_COLUMNS``); an admin adds or overrides entries under ``columns:``
in the workspace. A header nobody mapped is kept under ``attributes`` with its own name, so
no cell of an export is thrown away.

One row gives up to three records, all named by the row's key: the company (if a company
column has a value), the contact (if a name or an address does) and the deal (if a deal name
does). An optional cell that cannot be read (a 法人番号 Excel showed as ``7.00001E+12``, a
phone that is no number) is dropped with a ``CellIssue`` naming the column, and the row
lands; a value the row cannot do without (an address without ``@``, 2026/13/45, "approx.
3M") makes the whole row a ``BadRecord`` whose reason names the column and the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kizuna.errors import BadRecord
from mappings.spreadsheet import catalog
from mappings.spreadsheet import values as v
from mappings.spreadsheet.headers import DEFAULT_COLUMNS, fold
from mappings.spreadsheet.headers import DEFAULT_KEYS as DEFAULT_KEYS
from warehouse import records as r
from warehouse.identity.keys.normalize import normalize_email, normalize_phone

# Unified fields a column can feed, with what each means (shown to admins on a typo).
TARGETS: dict[str, str] = {
    "id": "the row's key (顧客ID)",
    "organization.name": "company name",
    "organization.domain": "company web site or domain",
    "organization.corporate_number": "法人番号 (13 digits)",
    "organization.industry": "industry",
    "organization.size": "company size / headcount",
    "organization.address": "company address",
    "organization.phone": "company phone",
    "person.full_name": "contact's full name (split into family/given)",
    "person.family_name": "contact's family name (姓)",
    "person.given_name": "contact's given name (名)",
    "person.full_name_kana": "full name in kana (フリガナ, split too)",
    "person.family_name_kana": "family name in kana (セイ)",
    "person.given_name_kana": "given name in kana (メイ)",
    "person.email": "an email address (several columns allowed)",
    "person.phone": "a phone number (several columns allowed)",
    "person.title": "job title (役職)",
    "person.department": "department (部署)",
    "person.gender": "gender",
    "person.birth_date": "birth date",
    "person.lifecycle_stage": "lifecycle stage",
    "deal.name": "deal name (案件名)",
    "deal.stage": "deal stage (フェーズ)",
    "deal.amount": "deal amount (¥1,200,000 / 120万円)",
    "deal.currency": "deal currency code",
    "deal.probability": "deal probability in % (確度)",
    "deal.expected_close": "expected close date (受注予定日)",
    "owner.email": "the owning sales rep's email (担当営業)",
    "ignore": "drop the column",
    **catalog.TARGETS,
}
ATTRIBUTE_PREFIX = "attributes."


def valid_target(target: str) -> bool:
    return target in TARGETS or (
        target.startswith(ATTRIBUTE_PREFIX) and len(target) > len(ATTRIBUTE_PREFIX)
    )


def target_help() -> str:
    return ", ".join([*TARGETS, "attributes.<name>"])


@dataclass(frozen=True)
class Plan:
    """The column map applied to one file's headers: computed once, used for every row."""

    fields: tuple[tuple[str, str], ...]
    attributes: tuple[tuple[str, str], ...]


@dataclass
class SheetMapping:
    """Maps rows of one configured spreadsheet source; pure, so one instance per stream."""

    columns: Mapping[str, str] = field(default_factory=dict)
    phone_region: str = "JP"
    key: str | None = None
    _plans: dict[tuple[str, ...], Plan] = field(default_factory=dict, repr=False)

    def plan(self, headers: Sequence[str]) -> Plan:
        cached = self._plans.get(tuple(headers))
        if cached is not None:
            return cached
        custom = {fold(h): t for h, t in self.columns.items()}
        fields: list[tuple[str, str]] = []
        attrs: list[tuple[str, str]] = []
        for h in headers:
            f = fold(h)
            target = custom.get(f) or DEFAULT_COLUMNS.get(f)
            if target is None:
                if self.key is not None and f == fold(self.key):
                    continue
                attrs.append((h, h))
            elif target.startswith(ATTRIBUTE_PREFIX):
                attrs.append((h, target[len(ATTRIBUTE_PREFIX) :]))
            elif target not in ("ignore", "id"):
                fields.append((h, target))
        plan = Plan(tuple(fields), tuple(attrs))
        self._plans[tuple(headers)] = plan
        return plan

    def __call__(self, raw: Mapping[str, str], source_id: str) -> list[r.Record]:
        plan = self.plan(list(raw))
        one: dict[str, tuple[str, str]] = {}
        emails: list[str] = []
        phones: list[str] = []
        attrs: dict[str, Any] = {}
        issues: list[r.CellIssue] = []
        address: list[tuple[str, str]] = []
        for header, target in plan.fields:
            value = raw[header].strip()
            if not value:
                continue
            if target == "organization.address":
                address.append((header, value))
            elif target == "owner.email" and normalize_email(value) is None:
                attrs[header] = value  # a rep's name, not an address: kept, no row lost
            elif target == "person.email":
                emails.extend(_emails(header, value))
            elif target == "person.phone":
                e164 = phone(value, self.phone_region)
                if e164 is None:
                    attrs[header] = value  # kept as written: a bad phone loses no row
                    issues.append(_issue(source_id, header, value, "not a phone number"))
                elif e164 not in phones:
                    phones.append(e164)
            elif target == "organization.corporate_number" and target not in one:
                try:
                    one[target] = (header, _corporate_number(value))
                except ValueError as exc:
                    issues.append(_issue(source_id, header, value, str(exc)))
            elif target not in one:
                one[target] = (header, value)
        for header, name in plan.attributes:
            value = raw[header].strip()
            if value:
                attrs[name] = value
        if address:
            one["organization.address"] = (address[0][0], join_address([a for _, a in address]))
        return [*_records(source_id, one, emails, phones, attrs, self.phone_region), *issues]


def _issue(sid: str, header: str, value: str, reason: str) -> r.CellIssue:
    return r.CellIssue(source_id=sid, column=header, value=value[:500], reason=reason)


def join_address(parts: Sequence[str]) -> str:
    """都道府県 + 市区町村 + 番地 in column order; a part a later one repeats is dropped."""
    kept = [p for i, p in enumerate(parts) if not any(q.startswith(p) for q in parts[i + 1 :])]
    sep = " " if all(p.isascii() for p in kept) else ""
    return sep.join(kept)


_JP_SEPARATORS = str.maketrans("", "", "-() ")
_JP_DOMESTIC = re.compile(r"0(?:[2-9]\d|1[1-9])\d{7,8}")


def phone(value: str, region: str) -> str | None:
    """E.164 via ``normalize_phone``, with a shortcut for the common Japanese domestic form.

    ``03-1234-5678`` / ``090-1234-5678`` (0 + 9 or 10 digits, not 00/010 which dial abroad)
    is always ``+81`` and the digits after the 0; libphonenumber agrees (tested) and costs
    about 40 µs a number, a real share of a million-row export.
    """
    if region == "JP":
        digits = v.nfkc(value).translate(_JP_SEPARATORS)
        if _JP_DOMESTIC.fullmatch(digits):
            return "+81" + digits[1:]
    return normalize_phone(value, region)


_EMAIL_SPLIT = re.compile(r"[;,、\s]+")


def _emails(header: str, value: str) -> list[str]:
    out = []
    for part in _EMAIL_SPLIT.split(value):
        if not part:
            continue
        n = normalize_email(part)
        if n is None:
            raise BadRecord(f"{header}: not an email address: {part!r}")
        out.append(n)
    return out


def _get(one: Mapping[str, tuple[str, str]], target: str) -> str | None:
    hit = one.get(target)
    return hit[1] if hit else None


def _parse(one: Mapping[str, tuple[str, str]], target: str, parser: Any) -> Any:
    hit = one.get(target)
    if hit is None:
        return None
    try:
        return parser(hit[1])
    except ValueError as exc:
        raise BadRecord(f"{hit[0]}: {exc}") from None


def _corporate_number(text: str) -> str:
    digits = re.sub(r"[\s-]", "", v.nfkc(text))
    if not re.fullmatch(r"\d{13}", digits):
        if re.fullmatch(r"\d(\.\d+)?E\+?\d+", digits, re.IGNORECASE):
            raise ValueError(f"{text!r} is Excel's exponent form: the digits are lost")
        raise ValueError(f"not a 13-digit 法人番号: {text!r}")
    return digits


def _owner(text: str) -> str:
    n = normalize_email(text)
    if n is None:
        raise ValueError(f"not an email address: {text!r}")
    return n


def _records(
    sid: str,
    one: Mapping[str, tuple[str, str]],
    emails: list[str],
    phones: list[str],
    attrs: dict[str, Any],
    region: str,
) -> list[r.Record]:
    owner = _parse(one, "owner.email", _owner)
    org_name = _get(one, "organization.name")
    domain = _get(one, "organization.domain")
    corp = _get(one, "organization.corporate_number")  # checked (or dropped) already
    ref = r.OrgRef(name=org_name, domain=domain, corporate_number=corp) if org_name else None

    full = _get(one, "person.full_name")
    family = _get(one, "person.family_name")
    given = _get(one, "person.given_name")
    if full and not (family or given):
        family, given = v.split_name(full)
    kana_full = _get(one, "person.full_name_kana")
    family_kana = _get(one, "person.family_name_kana")
    given_kana = _get(one, "person.given_name_kana")
    if kana_full and not (family_kana or given_kana):
        family_kana, given_kana = v.split_name(v.kana(kana_full))
    has_person = bool(full or family or given or emails)

    deal_name = _get(one, "deal.name")
    out: list[r.Record] = catalog.records(sid, one)
    if org_name:
        org_phone = _get(one, "organization.phone")
        if org_phone is not None:
            org_phone = phone(org_phone, region) or org_phone
        elif not has_person and phones:
            org_phone = phones[0]
        out.append(
            r.Organization(
                source_id=sid,
                name=org_name,
                domain=domain,
                corporate_number=corp,
                industry=_get(one, "organization.industry"),
                size=_get(one, "organization.size"),
                address=_get(one, "organization.address"),
                phone=org_phone,
                owner_email=owner,
                attributes={} if has_person or deal_name else attrs,
            )
        )
    if has_person:
        out.append(
            r.Person(
                source_id=sid,
                full_name=full,
                family_name=family,
                given_name=given,
                family_name_kana=v.kana(family_kana) if family_kana else None,
                given_name_kana=v.kana(given_kana) if given_kana else None,
                emails=emails,
                phones=phones,
                title=_get(one, "person.title"),
                department=_get(one, "person.department"),
                gender=_parse(one, "person.gender", v.parse_gender),
                birth_date=_parse(one, "person.birth_date", v.parse_date),
                organization=ref,
                owner_email=owner,
                lifecycle_stage=_get(one, "person.lifecycle_stage"),
                attributes=attrs,
            )
        )
    if deal_name:
        out.append(_deal(sid, one, deal_name, ref, emails, owner, {} if has_person else attrs))
    if not out:
        raise BadRecord(
            "no company, contact or deal (nor product or line) in this row (all mapped cells empty)"
        )
    return out


def _deal(
    sid: str,
    one: Mapping[str, tuple[str, str]],
    name: str,
    ref: r.OrgRef | None,
    emails: list[str],
    owner: str | None,
    attrs: dict[str, Any],
) -> r.Deal:
    amount: Decimal | None = None
    currency = _get(one, "deal.currency")
    parsed = _parse(one, "deal.amount", v.parse_amount)
    if parsed is not None:
        amount, marked = parsed
        currency = currency or marked
    probability = None
    hit = one.get("deal.probability")
    if hit is not None:
        try:
            probability = v.parse_percent(hit[1])
        except ValueError:
            attrs = {**attrs, hit[0]: hit[1]}  # ranks such as A/B/C are kept, not rejected
    stage = _get(one, "deal.stage")
    return r.Deal(
        source_id=sid,
        name=name,
        organization=ref,
        contact_email=emails[0] if emails else None,
        stage=stage,
        amount=amount,
        currency=(currency or "JPY").upper(),
        probability=probability,
        expected_close=_parse(one, "deal.expected_close", v.parse_date),
        status=v.deal_status(stage),
        owner_email=owner,
        attributes=attrs,
    )
