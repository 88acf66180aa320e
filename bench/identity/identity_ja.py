"""Generated Japanese customers with every phenomenon of the identity issues, and hard negatives.

Each base person comes from a CRM; about a third get duplicates written the way another
source would: a business card (romaji in either order, an English or abbreviated company name,
a reformatted phone, an extension), a mailbox (display name in kanji or kana, a Gmail
dot/+tag alias, an upper-cased address), a second CRM (half-width or hiragana kana, kana
without a space, variant kanji 髙/﨑/邊/關/𠮷 or the ``?`` cp932 leaves of 𠮷, a typo in the
reading, a branch office in the company name, a moved address), a second mailbox at the same
company, or a job change (new company and work address; same name, reading and mobile or
private mail). Hard negatives are people of their own: namesakes (same kanji and reading) at
other companies and at a company's twin (same trade name, other 法人格, domain and 法人番号),
same kanji read differently at the same company on its switchboard (and one of them again
from a mailbox with the name in kanji only, which the dictionary reads one way), and
colleagues sharing a switchboard or a team mailbox (eigyo@, info@). Business cards spell
readings as Hepburn, with the long vowel written out (Satoh, Satou, Ohno, Oono) or in Kunrei
(Syunsuke); second systems write variant kanji (髙 﨑 嵜 邊 邉 齋 齊 嶋 嶌 澤 濱 關 𠮷 眞 學 實) and
branches as 支店, 営業所, 本社 or "Osaka Branch".
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from warehouse import records as r

# The forms a second system writes for one kanji (異体字): one is picked per duplicate.
_ITAIJI_OUT = {
    "高": ("髙",),
    "崎": ("﨑", "嵜"),
    "辺": ("邊", "邉"),
    "斎": ("齋", "齊"),
    "島": ("嶋", "嶌"),
    "沢": ("澤",),
    "浜": ("濱",),
    "関": ("關",),
    "吉": ("𠮷",),
    "真": ("眞",),
    "学": ("學",),
    "実": ("實",),
}
_LEGAL = ["株式会社", "有限会社", "合同会社"]
_SHORT = {"株式会社": "(株)", "有限会社": "(有)", "合同会社": "(同)"}
_EN = {"株式会社": "Co., Ltd.", "有限会社": "Y.K.", "合同会社": "LLC"}
_TITLES = ["部長", "課長", "係長", "主任", "担当", "マネージャー", "取締役", None]
_KATAKANA_CO = [
    ("ネクストテック", "Next Tech"),
    ("サンライズ", "Sunrise"),
    ("グリーンフィールド", "Green Field"),
    ("ブルーオーシャン", "Blue Ocean"),
    ("スマイルワークス", "Smile Works"),
    ("ミライシステム", "Mirai System"),
    ("トップゲート", "Top Gate"),
    ("シルバーライン", "Silver Line"),
    ("ワンダーランド", "Wonderland"),
    ("エコリンク", "Eco Link"),
    ("フロンティア", "Frontier"),
    ("スカイネット", "Sky Net"),
]
# Kanji given names with more than one reading: the same kanji, two different people.
_MANY_READINGS = [
    ("健", ("ケン", "タケシ", "ツヨシ")),
    ("誠", ("マコト", "セイ")),
    ("博", ("ヒロシ", "ヒロム")),
    ("翔", ("ショウ", "カケル")),
    ("純", ("ジュン", "アツシ")),
    ("恵", ("メグミ", "ケイ")),
    ("裕", ("ユタカ", "ヒロシ")),
    ("学", ("マナブ", "ガク")),
]
_EN_BRANCH = ["Osaka Branch", "Head Office", "Nagoya Office", "Fukuoka Branch"]
_ROLE = ["eigyo", "info", "sales", "contact", "support"]


def _half(s: str) -> str:
    from bench.identity.identity_data import _kata_to_half

    return _kata_to_half(s)


def _hira(s: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in s)


def _full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


_KUNREI = (("shi", "si"), ("chi", "ti"), ("tsu", "tu"), ("sh", "sy"), ("ch", "ty"), ("j", "zy"))


def _card_romaji(name: tuple[str, str, str], rnd: random.Random) -> str:
    """How a business card spells a reading: Hepburn as Faker gives it (Sato), a long vowel
    written out (Satoh, Satou; Ohno, Oono for オオ), or Kunrei (Syunsuke, Mituru)."""
    roman, kana = name[2], name[1]
    style = rnd.random()
    if style < 0.25 and kana.endswith("ウ") and roman.endswith("o"):
        return roman + rnd.choice("hu")
    if style < 0.25 and kana.startswith("オオ") and roman.startswith("O"):
        return "O" + rnd.choice("ho") + roman[1:]
    if style > 0.85:
        low = roman.lower()
        for a, b in _KUNREI:
            low = low.replace(a, b)
        return low.capitalize()
    return roman


def corporate_number(base12: int) -> str:
    """A valid 法人番号 (check digit first) from a 12-digit base."""
    digits = f"{base12:012d}"
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(digits), start=1))
    return f"{9 - total % 9}{digits}"


@dataclass
class Company:
    name: str
    core: str
    english: str  # how a business card writes it
    legal: str
    domain: str
    corp: str
    postcode: str
    address: str
    phone: str
    city: str


def japanese_people(
    n: int, seed: int = 7, dup_rate: float = 0.3, per_company: int = 12
) -> Iterator[tuple[str, r.Person, int]]:
    """Yield (stream, record, true person index) for ``n`` base people, their duplicates and
    the hard negatives (people of their own, with indexes from ``n`` up)."""
    import faker.providers.address.ja_JP as fa
    import faker.providers.company.ja_JP as fc
    import faker.providers.person.ja_JP as fp

    from warehouse.identity.keys.readings import reading_tokens

    rnd = random.Random(seed)
    last = list(fp.Provider.last_name_pairs)
    first = list(fp.Provider.first_name_male_pairs) + list(fp.Provider.first_name_female_pairs)
    cats = list(fc.Provider.company_categories)
    cities = list(fa.Provider.cities)
    prefs = list(fa.Provider.prefectures)
    towns = list(fa.Provider.towns)
    companies: dict[int, Company] = {}
    n_companies = max(2, n // per_company)

    def company(ci: int) -> Company:
        got = companies.get(ci)
        if got is not None:
            return got
        twin_of = ci - n_companies if ci >= n_companies else None
        crnd = random.Random(seed * 1_000_003 + ci)
        if twin_of is not None:  # same trade name, another company
            base = company(twin_of)
            core, english = base.core, base.english
            legal = crnd.choice([x for x in _LEGAL if x != base.legal])
        elif crnd.random() < 0.25:
            kana, english = crnd.choice(_KATAKANA_CO)
            core = f"{kana}{ci}" if crnd.random() < 0.5 else kana
            english = f"{english} {ci}" if core != kana else english
            legal = crnd.choice(_LEGAL)
        else:
            ln, cat, city = crnd.choice(last), crnd.choice(cats), crnd.choice(cities)
            core = f"{city.removesuffix('市')}{ln[0]}{cat}"
            english = " ".join(t.capitalize() for t in reading_tokens(core))
            legal = crnd.choice(_LEGAL)
        city = crnd.choice(cities)
        got = Company(
            name=f"{legal}{core}" if crnd.random() < 0.7 else f"{core}{legal}",
            core=core,
            english=english,
            legal=legal,
            domain=f"c{ci}-{crnd.randint(10, 99)}.co.jp",
            corp=corporate_number(crnd.randrange(10**11, 10**12)),
            postcode=f"{crnd.randint(100, 999)}-{crnd.randint(0, 9999):04d}",
            address=f"{crnd.choice(prefs)}{city}{crnd.choice(towns)}{crnd.randint(1, 9)}-"
            f"{crnd.randint(1, 30)}-{crnd.randint(1, 20)}",
            phone=f"0{crnd.randint(3, 99)}-{crnd.randint(100, 9999)}-{ci % 10000:04d}",
            city=city,
        )
        if len(companies) > 50000:
            companies.clear()
        companies[ci] = got
        return got

    def org_variant(c: Company) -> r.OrgRef:
        name = rnd.choice(
            [
                f"{_SHORT[c.legal]}{c.core}",
                f"{c.core}{_SHORT[c.legal]}",
                _full_width(_SHORT[c.legal]) + c.core,
                f"{c.english} {_EN[c.legal]}",
                f"{c.name} {c.city.removesuffix('市')}支店",
                f"{c.name} {c.city.removesuffix('市')}営業所",
                f"{c.english} {_EN[c.legal]} {rnd.choice(_EN_BRANCH)}",
                f"{c.name} 本社",
                c.name,
            ]
        )
        return r.OrgRef(name=name)

    def person(
        sid: str, fam: tuple[str, str, str], giv: tuple[str, str, str], c: Company, **kw: object
    ) -> r.Person:
        return r.Person(
            source_id=sid,
            family_name=fam[0],
            given_name=giv[0],
            family_name_kana=fam[1],
            given_name_kana=giv[1],
            title=rnd.choice(_TITLES),
            organization=r.OrgRef(name=c.name, domain=c.domain, corporate_number=c.corp),
            attributes={"postal_code": c.postcode, "address": c.address},
            payload_hash=sid,
            **kw,
        )

    extra = n  # hard negatives are people of their own, numbered after the base people
    for i in range(n):
        fam, giv = rnd.choice(last), rnd.choice(first)
        ci = rnd.randrange(n_companies)
        c = company(ci)
        local = f"{giv[2][0].lower()}.{fam[2].lower()}{i % 97}"
        team = rnd.random() < 0.08
        work = f"{rnd.choice(_ROLE)}@{c.domain}" if team else f"{local}@{c.domain}"
        mobile = f"0{rnd.choice('789')}0-{(i // 10000) % 10000:04d}-{i % 10000:04d}"
        switch = rnd.random() < 0.2
        phone = (
            f"{c.phone} 内線{rnd.randint(100, 999)}" if switch and rnd.random() < 0.4 else c.phone
        )
        personal = f"{giv[2].lower()}.{fam[2].lower()}{i}@gmail.com" if rnd.random() < 0.3 else None
        dob = (
            f"{rnd.randint(1950, 2000)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
            if rnd.random() < 0.25
            else None
        )
        base = person(
            f"b{i}",
            fam,
            giv,
            c,
            emails=[work] + ([personal] if personal else []),
            phones=[phone] if switch else [mobile],
            birth_date=dob,
        )
        yield "crm", base, i
        # -- hard negatives ------------------------------------------------------------
        roll = rnd.random()
        if roll < 0.04:  # a namesake at another company or at this company's twin
            oc = company(ci + n_companies if rnd.random() < 0.5 else rnd.randrange(n_companies))
            if oc.domain != c.domain:
                yield (
                    "crm",
                    person(
                        f"h{extra}",
                        fam,
                        giv,
                        oc,
                        emails=[f"{giv[2][0].lower()}{fam[2].lower()}{extra}@{oc.domain}"],
                        phones=[oc.phone],
                    ),
                    extra,
                )
                extra += 1
        elif roll < 0.07:  # same kanji, other readings, one switchboard, one team mailbox
            kanji, readings = rnd.choice(_MANY_READINGS)
            box = f"{rnd.choice(_ROLE)}@{c.domain}"
            own = f"{fam[2].lower()}{extra}@{c.domain}"  # the first one's own mailbox
            lead = extra
            for reading in readings[:2]:
                yield (
                    "crm",
                    person(
                        f"h{extra}",
                        fam,
                        (kanji, reading, ""),
                        c,
                        emails=[box, own] if extra == lead else [box],
                        phones=[c.phone],
                    ),
                    extra,
                )
                extra += 1
            # The first one again from a mailbox, the name in kanji only: the dictionary
            # guesses one reading, which must neither conflict with theirs nor join the two.
            yield (
                "mail",
                r.Person(
                    source_id=f"m{lead}",
                    full_name=f"{fam[0]}{kanji}",
                    emails=[own],
                    payload_hash=f"m{lead}",
                ),
                lead,
            )
        if rnd.random() >= dup_rate:
            continue
        for k in range(1 if rnd.random() < 0.7 else 2):
            kind = rnd.choice(["cards", "mail", "crm2", "crm2", "second", "job"])
            if kind == "job" and switch and not personal:
                kind = "crm2"  # a job changer is found by a personal contact; this one has none
            sid = f"d{i}_{k}"
            if kind == "cards":
                fr, gr = _card_romaji(fam, rnd), _card_romaji(giv, rnd)
                name = f"{fr.upper()} {gr}" if rnd.random() < 0.5 else f"{gr} {fr}"
                ph = rnd.choice([mobile.replace("-", ""), "+81 " + mobile[1:], _full_width(mobile)])
                if switch:
                    ph = f"{c.phone} (内線{rnd.randint(100, 999)})" if rnd.random() < 0.5 else ""
                dup = r.Person(
                    source_id=sid,
                    full_name=name,
                    phones=[ph] if ph else [],
                    emails=[work] if rnd.random() < 0.3 and not team else [],
                    title=rnd.choice(_TITLES),
                    organization=org_variant(c),
                    payload_hash=sid,
                )
            elif kind == "mail":
                display = rnd.choice(
                    [f"{fam[0]}{giv[0]}", f"{fam[0]} {giv[0]}", f"{fam[1]} {giv[1]}"]
                )
                if personal and (team or rnd.random() < 0.6):
                    loc, _, dom = personal.partition("@")
                    addr = loc.replace(".", "") + "+news@" + dom
                elif team:
                    addr = f"{giv[2].lower()}{i}@{c.domain}"
                else:
                    addr = work.upper() if rnd.random() < 0.5 else work
                dup = r.Person(source_id=sid, full_name=display, emails=[addr], payload_hash=sid)
            elif kind == "second":  # a second mailbox at the same company
                dup = r.Person(
                    source_id=sid,
                    family_name=fam[0],
                    given_name=giv[0],
                    family_name_kana=fam[1],
                    given_name_kana=giv[1],
                    emails=[f"{fam[2].lower()}-{giv[2][:1].lower()}{i}@{c.domain}"],
                    organization=org_variant(c),
                    payload_hash=sid,
                )
            elif kind == "job":  # moved to another company: name, reading, mobile or gmail
                nc = company(rnd.randrange(n_companies))
                contact: dict[str, list[str]] = (
                    {"emails": [personal, f"{fam[2].lower()}.{giv[2].lower()}@{nc.domain}"]}
                    if personal
                    else {
                        "emails": [f"{fam[2].lower()}.{giv[2].lower()}@{nc.domain}"],
                        "phones": [mobile],
                    }
                )
                dup = person(sid, fam, giv, nc, **contact)
            else:
                fam_k = "".join(rnd.choice(_ITAIJI_OUT.get(ch, (ch,))) for ch in fam[0])
                giv_k = "".join(rnd.choice(_ITAIJI_OUT.get(ch, (ch,))) for ch in giv[0])
                if "𠮷" in fam_k and rnd.random() < 0.5:
                    fam_k = fam_k.replace("𠮷", "?")  # what cp932 leaves of 𠮷
                kana_f, kana_g = fam[1], giv[1]
                if rnd.random() < 0.1 and len(kana_g) > 2:  # a typo in the reading
                    j = rnd.randrange(1, len(kana_g))
                    kana_g = kana_g[:j] + rnd.choice("アイウエオカキクケコ") + kana_g[j + 1 :]
                style: Callable[[str], str] = rnd.choice([_half, _hira, str])
                kana = style(f"{kana_f} {kana_g}")
                spaced = rnd.random() < 0.67
                moved = rnd.random() < 0.5
                dup = r.Person(
                    source_id=sid,
                    family_name=fam_k,
                    given_name=giv_k,
                    family_name_kana=kana.split(" ")[0] if spaced else kana.replace(" ", ""),
                    given_name_kana=kana.split(" ")[1] if spaced else None,
                    phones=[mobile] if rnd.random() < 0.5 and not switch else [],
                    title=rnd.choice(_TITLES),
                    organization=org_variant(c),
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
