"""Blocking keys and pair scores for identity resolution (pure, no I/O).

Names, companies and addresses are first brought to comparable forms (``readings``). Scores
are Fellegi–Sunter style: each field adds log-odds evidence for or against a match (agreement
on a rare field counts more, a missing field counts nothing), and the sum is squashed to a
probability that the workspace thresholds cut into merge / review / separate.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rapidfuzz.distance import JaroWinkler, Levenshtein
from rapidfuzz.fuzz import token_set_ratio

from warehouse.identity.linkage.companies import legal_form, sound_key, strip_branch
from warehouse.identity.linkage.contacts import strip_extension
from warehouse.identity.linkage.linker import LinkSettings
from warehouse.identity.normalize import FREE_MAIL_DOMAINS, normalize_phone
from warehouse.identity.readings import (
    _DIGITS,
    _GENERIC_LOCAL,
    _JAPANESE,
    canonical_email,
    company_domain,
    fold_text,
    is_japanese,
    org_key,
    phonetic,
    reading_tokens,
    split_kana,
)

__all__ = [
    "Decision",
    "MatchSettings",
    "PersonFeatures",
    "block_keys",
    "canonical_email",
    "company_domain",
    "decide",
    "fold_text",
    "key_part",
    "org_key",
    "person_features",
    "phonetic",
    "reading_tokens",
    "rule_match",
    "score_pair",
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

    def dumps(self) -> str:
        return json.dumps(
            [
                self.name,
                self.tokens,
                self.emails,
                self.phones,
                self.org,
                self.domain,
                self.dob,
                self.address,
                self.postcode,
                self.ext,
                int(self.trusted),
                self.corp,
                self.legal,
                self.org_sound,
            ],
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, record_id: int, data: str) -> PersonFeatures:
        n, tk, em, ph, org, dom, dob, addr, pc, ext, *more = json.loads(data)
        tr, corp, legal, snd = (*more, 0, "", "", "")[:4] if more else (0, "", "", "")
        return cls(
            record_id, n, tuple(tk), tuple(em), tuple(ph), org, dom, dob, addr, pc, ext,
            bool(tr), corp, legal, snd,
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
    partitions: int = 16
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
    """
    fam, giv = row.get("family_name"), row.get("given_name")
    fam_k, giv_k = row.get("family_name_kana"), row.get("given_name_kana")
    full = row.get("full_name") or ""
    written = " ".join(x for x in (fam, giv) if x) or full
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
    ems = sorted({canonical_email(e, settings.provider_aliases) for e in emails if "@" in e})
    domain = next(
        (d for d in sorted(company_domain(e, settings.free_mail_domains) for e in ems) if d), ""
    )
    phs = sorted(
        {p for p in (normalize_phone(strip_extension(x), settings.phone_region) for x in phones) if p}
    )
    attrs = row.get("attributes") or {}
    bd = row.get("birth_date")
    dob = (
        bd.strftime("%Y%m%d")
        if bd is not None
        else _DIGITS.sub("", str(attrs.get("birth_date", "")))
    )
    return PersonFeatures(
        id=record_id,
        name=fold_text(written).replace(" ", ""),
        tokens=tokens,
        emails=tuple(ems),
        phones=tuple(phs),
        org=org_key(org_name) if org_name else "",
        domain=domain,
        dob=dob,
        address=fold_text(_first(attrs, settings.address_attributes)),
        postcode=_DIGITS.sub("", _first(attrs, settings.postcode_attributes)),
        ext=fold_text(_first(attrs, settings.id_attributes)).replace(" ", ""),
        trusted=trusted,
        corp=corp or "",
        legal=legal_form(strip_branch(org_name)) if org_name else "",
        org_sound=_org_sound(org_name) if org_name else "",
    )


@lru_cache(maxsize=262144)
def _org_sound(name: str) -> str:
    """Cross-script key of a company name: kanji are read by the dictionary (足立区松本情報 →
    adatiku matumoto zyoho), so its romaji and English spellings compare too."""
    key = org_key(name)
    if key and is_japanese(key):
        key = "".join(reading_tokens(key))
    return sound_key(key) if key else ""


def _first(attrs: dict[str, Any], keys: Sequence[str]) -> str:
    for k in keys:
        v = attrs.get(k)
        if v not in (None, ""):
            return str(v)
    return ""


def block_keys(f: PersonFeatures) -> list[str]:
    """Keys that put likely duplicates in one block; a pair is compared if it shares one.

    Keys combine a name with a second field (company, birth date, postcode) so a common name
    does not make a block of thousands; contact keys (email, phone) stand alone.
    """
    keys = [f"e|{e}" for e in f.emails]
    keys += [f"p|{p}" for p in f.phones]
    for e in f.emails:
        local = e.split("@", 1)[0]
        if len(local) >= 5 and local not in _GENERIC_LOCAL:
            keys.append(f"l|{local}")
    if f.ext:
        keys.append(f"x|{f.ext}")
    toks = sorted(f.tokens)
    reading = " ".join(toks)
    if reading:
        for tag, other in (("o", f.org or f.domain), ("b", f.dob), ("z", f.postcode)):
            if other:
                keys.append(f"n{tag}|{reading}|{other}")
        if len(toks) >= 2:
            keys.append(f"t|{toks[0][:4]}|{toks[-1][:4]}")
        for t in toks[:2]:
            if f.dob:
                keys.append(f"b|{f.dob}|{t[:2]}")
            if f.postcode:
                keys.append(f"z|{f.postcode}|{t[:3]}")
    if f.name and (f.org or f.domain):
        keys.append(f"k|{f.name}|{f.org or f.domain}")
    if f.dob and f.postcode:
        keys.append(f"d|{f.dob}|{f.postcode}")
    return sorted({k[:200] for k in keys})


def key_part(key: str, partitions: int) -> int:
    """A stable partition number for a key (the same on every run and machine)."""
    return zlib.crc32(key.encode()) % partitions


# ---------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------

DEFAULT_WEIGHTS: dict[str, float] = {
    # Log-odds that two rows sharing a block are one person before any field is compared.
    # Tuned so that an exact name with nothing else known lands in review, not merge:
    # namesakes are common (田中 太郎), so a merge needs a second agreeing field.
    "prior": -2.0,
    "name_exact": 4.0,
    "token_high": 2.0,
    "token_mid": 0.5,
    "token_low": -2.5,
    "name_low": -4.0,
    "dob_exact": 4.5,
    "dob_near": 2.0,
    "dob_diff": -3.5,
    "phone": 5.0,
    "phone_diff": -1.0,
    "email_local": 2.0,
    "work_email_diff": -3.0,
    "org_same": 2.5,
    "org_diff": -2.5,
    "domain_same": 1.5,
    "address_high": 3.0,
    "address_mid": 1.0,
    "address_diff": -1.5,
    "postcode": 1.5,
    "postcode_diff": -0.5,
    "ext_exact": 5.0,
    "ext_near": 2.0,
    "ext_diff": -3.0,
}


def name_similarity(a: PersonFeatures, b: PersonFeatures) -> tuple[float, float]:
    """(best, worst) token similarity of two names, token order ignored.

    Reading and written forms are both tried and the better kept; a name with one token
    (a family name only) is compared whole and can never count as a full match.
    """
    best: tuple[float, float] = (0.0, 0.0)
    if a.name and b.name:
        if a.name == b.name:
            return (1.0, 1.0)
        if _JAPANESE.search(a.name) and _JAPANESE.search(b.name):
            s = Levenshtein.normalized_similarity(a.name, b.name) * 0.95
            best = (s, s)
    if a.tokens and b.tokens:
        t = _tokens_sim(a.tokens, b.tokens)
        if t[0] + t[1] > best[0] + best[1]:
            best = t
    return best


def _token_sim(x: str, y: str) -> float:
    """Jaro-Winkler, but two or more edits apart is never 'high': short romaji names that
    share a prefix (yamasita, yamasaki, yamada) are different names, not typos."""
    if x == y:
        return 1.0
    s = JaroWinkler.similarity(x, y)
    return s if s < 0.9 or Levenshtein.distance(x, y) <= 1 else min(s, 0.89)


def _tokens_sim(x: tuple[str, ...], y: tuple[str, ...]) -> tuple[float, float]:
    if len(x) == len(y) >= 2:
        x0, x1 = x[0], "".join(x[1:])
        y0, y1 = y[0], "".join(y[1:])
        jw = _token_sim
        s1, s2 = jw(x0, y0), jw(x1, y1)
        w1, w2 = jw(x0, y1), jw(x1, y0)
        # The alignment where one token agrees best wins (a changed given name keeps the
        # family name aligned); swapped order wins when both tokens agree crosswise.
        hi, lo = max((s1, s2), (w1, w2), key=lambda p: (round(max(p), 2), sum(p)))
        return (max(hi, lo), min(hi, lo))
    whole = JaroWinkler.similarity("".join(x), "".join(y))
    return (whole, min(whole, 0.85))


def _dob_sim(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if len(a) == 8 and len(b) == 8:
        if a[:4] + a[6:] + a[4:6] == b:  # day and month swapped
            return 0.8
        if Levenshtein.distance(a, b) == 1:
            return 0.8
    return 0.0


def score_pair(
    a: PersonFeatures, b: PersonFeatures, weights: dict[str, float] | None = None
) -> tuple[float, dict[str, float]]:
    """Probability that two person rows are one person, and the per-field similarities."""
    w = DEFAULT_WEIGHTS if not weights else DEFAULT_WEIGHTS | weights
    fields: dict[str, float] = {}
    total = w["prior"]
    hi, lo = name_similarity(a, b)
    named = bool((a.tokens or a.name) and (b.tokens or b.name))
    if named:
        fields["name"] = round((hi + lo) / 2, 3)
        if lo >= 0.99:
            total += w["name_exact"]
        elif hi < 0.8:
            total += w["name_low"]
        else:
            total += w["token_high"] if hi >= 0.92 else w["token_mid"]
            total += (
                w["token_high"] if lo >= 0.92 else w["token_mid"] if lo >= 0.8 else w["token_low"]
            )
    if a.dob and b.dob:
        ds = _dob_sim(a.dob, b.dob)
        fields["dob"] = ds
        total += w["dob_exact"] if ds == 1 else w["dob_near"] if ds > 0 else w["dob_diff"]
    # When a name token clearly differs (田中 太郎 and 田中 次郎), a shared phone, company or
    # domain describes the workplace (a switchboard, colleagues), not the person.
    workplace = 0.0 if named and lo < 0.8 else 1.0
    if a.phones and b.phones:
        same = bool(set(a.phones) & set(b.phones))
        fields["phone"] = 1.0 if same else 0.0
        total += w["phone"] * workplace if same else w["phone_diff"]
    if a.emails and b.emails:
        la = {e.split("@")[0] for e in a.emails}
        lb = {e.split("@")[0] for e in b.emails}
        if la & lb:
            fields["email_local"] = 1.0
            total += w["email_local"]
        elif a.domain and a.domain == b.domain:
            # Two different mailboxes at one company are usually two people (namesakes).
            fields["email_local"] = 0.0
            total += w["work_email_diff"]
    # A company written in kanji and one written in Latin letters cannot be compared.
    if a.org and b.org and bool(_JAPANESE.search(a.org)) == bool(_JAPANESE.search(b.org)):
        os_ = 1.0 if a.org == b.org else JaroWinkler.similarity(a.org, b.org)
        fields["org"] = round(os_, 3)
        total += w["org_same"] * workplace if os_ >= 0.92 else w["org_diff"]
    elif a.domain and b.domain and a.domain == b.domain:
        fields["domain"] = 1.0
        total += w["domain_same"] * workplace
    same_org = bool(a.org and a.org == b.org) or bool(a.domain and a.domain == b.domain)
    # Colleagues share the company's address: it says nothing the company did not.
    if a.address and b.address and not same_org:
        ad = token_set_ratio(a.address, b.address) / 100
        fields["address"] = round(ad, 3)
        total += (
            w["address_high"] if ad >= 0.9 else w["address_mid"] if ad >= 0.7 else w["address_diff"]
        )
    if a.postcode and b.postcode and not same_org:
        same_pc = a.postcode == b.postcode
        fields["postcode"] = 1.0 if same_pc else 0.0
        total += w["postcode"] if same_pc else w["postcode_diff"]
    if a.ext and b.ext:
        xs = 1.0 if a.ext == b.ext else Levenshtein.normalized_similarity(a.ext, b.ext)
        fields["ext"] = round(xs, 3)
        total += w["ext_exact"] if xs == 1 else w["ext_near"] if xs >= 0.75 else w["ext_diff"]
    return 1.0 / (1.0 + math.exp(-total)), fields


def rule_match(a: PersonFeatures, b: PersonFeatures) -> tuple[str, dict[str, float]] | None:
    """Deterministic rules, checked before any score: same address, or same phone + name."""
    shared = set(a.emails) & set(b.emails)
    if shared:
        return "rule:email", {"email": 1.0}
    if set(a.phones) & set(b.phones):
        _, lo = name_similarity(a, b)
        if lo >= 0.92:
            return "rule:phone+name", {"phone": 1.0, "name": round(lo, 3)}
    return None


@dataclass
class Decision:
    a: int
    b: int
    method: str
    score: float
    fields: dict[str, float]
    decision: str  # merge | review


def decide(a: PersonFeatures, b: PersonFeatures, settings: MatchSettings) -> Decision | None:
    """Rules first, then the score against the thresholds; None means 'separate'."""
    lo, hi = (a, b) if a.id < b.id else (b, a)
    rule = rule_match(lo, hi)
    if rule is not None:
        return Decision(lo.id, hi.id, rule[0], 1.0, rule[1], "merge")
    p, fields = score_pair(lo, hi, settings.weights)
    if p >= settings.merge_threshold:
        return Decision(lo.id, hi.id, "score", round(p, 4), fields, "merge")
    if p >= settings.review_threshold:
        return Decision(lo.id, hi.id, "score", round(p, 4), fields, "review")
    return None
