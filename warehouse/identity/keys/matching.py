"""Each person row's comparable features, its blocking keys, and the settings (pure, no I/O).

Names, companies and addresses are first brought to comparable forms (``readings``); the
scoring itself is ``linkage`` (Fellegi–Sunter with weights learned from the data). The keys
here index the stored features so an incremental run finds a changed row's neighbours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from warehouse.identity.keys.normalize import FREE_MAIL_DOMAINS, normalize_phone
from warehouse.identity.keys.readings import (
    _DIGITS,
    canonical_email,
    company_domain,
    fold_text,
    is_japanese,
    org_key,
    org_written,
    phonetic,
    reading_tokens,
    split_kana,
)
from warehouse.identity.linkage.companies import legal_form, sound_key, strip_branch
from warehouse.identity.linkage.contacts import strip_extension
from warehouse.identity.linkage.linker import LinkSettings

__all__ = [
    "Decision",
    "MatchSettings",
    "PersonFeatures",
    "canonical_email",
    "company_domain",
    "fold_text",
    "org_key",
    "person_features",
    "phonetic",
    "reading_tokens",
]


@dataclass(frozen=True, slots=True)
class PersonFeatures:
    """The comparable form of one person row."""

    id: int
    name: str = ""  # folded written name without spaces (kanji or latin)
    tokens: tuple[str, ...] = ()  # phonetic reading tokens, family name first when known
    emails: tuple[str, ...] = ()  # canonical addresses
    phones: tuple[str, ...] = ()  # E.164
    org: str = ""  # normalised organization name
    domain: str = ""  # company mail domain (never free mail)
    dob: str = ""  # YYYYMMDD
    address: str = ""
    postcode: str = ""
    ext: str = ""  # an external identifier named in the workspace (e.g. a member number)
    trusted: bool = False  # the reading came from a kana column or a Latin name, not a guess
    corp: str = ""  # the organization's 法人番号
    legal: str = ""  # the organization's 法人格 as a code ('kk', 'yk', …)
    org_sound: str = ""  # consonant skeleton of a kana or Latin company name (cross-script)

    @classmethod
    def loads(cls, record_id: int, data: str) -> PersonFeatures:
        n, tk, em, ph, org, dom, dob, addr, pc, ext, *more = orjson.loads(data)
        tr, corp, legal, snd = (*more, 0, "", "", "")[:4] if more else (0, "", "", "")
        return cls(
            record_id,
            n,
            tuple(tk),
            tuple(em),
            tuple(ph),
            org,
            dom,
            dob,
            addr,
            pc,
            ext,
            bool(tr),
            corp,
            legal,
            snd,
        )


@dataclass(frozen=True)
class MatchSettings:
    """What an admin can tune (validated from the workspace ``identity:`` section)."""

    merge_threshold: float = 0.9
    review_threshold: float = 0.6
    phone_region: str = "JP"
    provider_aliases: bool = True
    free_mail_domains: frozenset[str] = FREE_MAIL_DOMAINS
    max_block_size: int = 100
    id_attributes: tuple[str, ...] = ()
    address_attributes: tuple[str, ...] = ("address",)
    postcode_attributes: tuple[str, ...] = ("postal_code", "postcode", "zip")
    weights: dict[str, float] = field(default_factory=dict)
    link: LinkSettings = field(default_factory=LinkSettings)


def person_features(
    record_id: int,
    row: dict[str, Any],
    emails: Iterable[str],
    phones: Iterable[str],
    org_name: str | None,
    settings: MatchSettings,
    corp: str | None = None,
) -> PersonFeatures:
    """Comparable form of a person row plus its emails, phones and organization name.

    A reading from a kana column (or a name written in Latin letters) is the truth for that
    row and marked ``trusted``; a kanji-only name gets pykakasi's dictionary guess, which two
    rows of one kanji always share and so can never disagree. A kana cell without a space is
    split after the family name's reading when it starts with it.

    Built from parts (``name_part``, ``mail_part``, ``phone_part``, ``org_part``,
    ``attribute_part``) that a column-wise pass computes once per distinct value instead.
    """
    name, tokens, trusted = name_part(
        row.get("family_name"),
        row.get("given_name"),
        row.get("family_name_kana"),
        row.get("given_name_kana"),
        row.get("full_name"),
    )
    ems, domain = mail_part(emails, settings)
    org, legal, sound = org_part(org_name)
    dob, address, postcode, ext = attribute_part(
        row.get("birth_date"), row.get("attributes") or {}, settings
    )
    return PersonFeatures(
        id=record_id,
        name=name,
        tokens=tokens,
        emails=ems,
        phones=phone_part(phones, settings),
        org=org,
        domain=domain,
        dob=dob,
        address=address,
        postcode=postcode,
        ext=ext,
        trusted=trusted,
        corp=corp or "",
        legal=legal,
        org_sound=sound,
    )


def name_part(
    fam: str | None,
    giv: str | None,
    fam_k: str | None,
    giv_k: str | None,
    full: str | None,
) -> tuple[str, tuple[str, ...], bool]:
    """(folded written name without spaces, reading tokens, trusted) of one person's name."""
    written = " ".join(x for x in (fam, giv) if x) or full or ""
    if fam_k and not giv_k and giv:
        cut = split_kana(fam_k, fam)
        if cut is not None:
            fam_k, giv_k = cut
    if fam_k or giv_k:
        tokens = reading_tokens(" ".join(x for x in (fam_k, giv_k) if x))
        trusted = True
    else:
        tokens = reading_tokens(written)
        trusted = bool(written) and not is_japanese(written)
    return fold_text(written).replace(" ", ""), tokens, trusted


def mail_part(emails: Iterable[str], settings: MatchSettings) -> tuple[tuple[str, ...], str]:
    """(canonical addresses, the first company domain among them or '')."""
    ems = sorted({canonical_email(e, settings.provider_aliases) for e in emails if "@" in e})
    domain = next(
        (d for d in sorted(company_domain(e, settings.free_mail_domains) for e in ems) if d), ""
    )
    return tuple(ems), domain


def phone_part(phones: Iterable[str], settings: MatchSettings) -> tuple[str, ...]:
    """E.164 numbers, extensions dropped (the main number is the company's)."""
    found = (normalize_phone(strip_extension(x), settings.phone_region) for x in phones)
    return tuple(sorted({p for p in found if p}))


def org_part(org_name: str | None) -> tuple[str, str, str]:
    """(comparable company name, 法人格 code, cross-script sound key)."""
    if not org_name:
        return "", "", ""
    return org_key(org_name), legal_form(strip_branch(org_name)), _org_sound(org_name)


def org_parts(names: Iterable[str | None]) -> list[tuple[str, str, str]]:
    """``org_part`` of each of a run's new company names. The steps one name's parts share
    are cached, so each is computed once per name; the caches are emptied after the batch:
    a run reads each company name once (its memo keeps the parts)."""
    try:
        return [org_part(n) for n in names]
    finally:
        forget_names()


def forget_names() -> None:
    """Empty the caches of the steps a company name goes through (``org_part``): they let
    one name's parts share a step, but a run asks for each name once, so what they keep
    afterwards only takes memory (0.2 GB after resolving 260,000 companies)."""
    for step in (_org_sound, org_key, org_written, strip_branch, legal_form, sound_key):
        step.cache_clear()


def attribute_part(
    birth_date: Any, attrs: dict[str, Any], settings: MatchSettings
) -> tuple[str, str, str, str]:
    """(birth date YYYYMMDD, address, postcode digits, external id) of one row."""
    return attribute_values(
        birth_date,
        str(attrs.get("birth_date", "")) if birth_date is None else "",
        first_attribute(attrs, settings.address_attributes),
        first_attribute(attrs, settings.postcode_attributes),
        first_attribute(attrs, settings.id_attributes),
    )


def attribute_values(
    birth_date: Any, birth_text: str, address: str, postcode: str, ext: str
) -> tuple[str, str, str, str]:
    """``attribute_part`` of values already taken from the row (a column-wise pass calls it
    once per distinct tuple)."""
    dob = birth_date.strftime("%Y%m%d") if birth_date is not None else _DIGITS.sub("", birth_text)
    return (
        dob,
        fold_text(address),
        _DIGITS.sub("", postcode),
        fold_text(ext).replace(" ", ""),
    )


@lru_cache(maxsize=262144)
def _org_sound(name: str) -> str:
    """Cross-script key of a company name: kanji are read by the dictionary (足立区松本情報 →
    adatiku matumoto zyoho), so its romaji and English spellings compare too."""
    key = org_key(name)
    if key and is_japanese(key):
        key = "".join(reading_tokens(org_written(name)))
    return sound_key(key) if key else ""


def first_attribute(attrs: dict[str, Any], keys: Sequence[str]) -> str:
    for k in keys:
        v = attrs.get(k)
        if v not in (None, ""):
            return str(v)
    return ""


@dataclass
class Decision:
    a: int
    b: int
    method: str
    score: float
    fields: dict[str, float]
    decision: str  # merge | review
