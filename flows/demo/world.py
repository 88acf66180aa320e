"""The sample company behind ``kizuna demo``: staff, customer companies, contacts and deals.

Everything is drawn from one seeded ``random.Random`` and seeded Faker instances, so a seed
gives the same world byte for byte. Names are what real exports contain: kanji with matching
kana and romaji (Faker ``ja_JP`` name pairs), 株式会社/(株)/㈱/有限会社 spellings, full- and
half-width variants of one company, English "Co., Ltd."/"Inc." companies abroad, and a few
people who write from a second (personal) address.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta

from faker import Faker

OWN_NAME = "株式会社キズナデモ"
OWN_DOMAIN = "kizuna-demo.co.jp"
STAGES = ("リード", "提案", "見積", "交渉", "受注", "失注")
STAGE_WEIGHTS = (20, 22, 18, 14, 16, 10)
STAGE_PROBABILITY = {"リード": 10, "提案": 30, "見積": 50, "交渉": 70, "受注": 100, "失注": 0}

# (業種, the word in the company name, its romaji)
INDUSTRIES = (
    ("建設業", "建設", "kensetsu"),
    ("製造業", "工業", "kogyo"),
    ("製造業", "製作所", "seisakusho"),
    ("製造業", "電機", "denki"),
    ("卸売業", "商事", "shoji"),
    ("卸売業", "物産", "bussan"),
    ("情報通信業", "システム", "system"),
    ("情報通信業", "情報サービス", "joho"),
    ("運輸業", "運輸", "unyu"),
    ("不動産業", "不動産", "fudosan"),
    ("小売業", "商店", "shoten"),
    ("食品製造業", "食品", "foods"),
    ("医療・福祉", "メディカル", "medical"),
    ("金融業", "ファイナンス", "finance"),
)
BRANDS = (
    ("サンライズ", "sunrise"),
    ("テクノス", "technos"),
    ("グローバル", "global"),
    ("ネクスト", "next"),
    ("フロンティア", "frontier"),
    ("アルファ", "alpha"),
    ("ミライ", "mirai"),
    ("オーシャン", "ocean"),
    ("スカイ", "sky"),
    ("ヒカリ", "hikari"),
)
LETTERS = ("ABC", "JTS", "NKS", "KDS", "MTC", "SBS", "TKC", "YMS")
EN_WORDS = (
    ("Trading", "trading"),
    ("Systems", "systems"),
    ("Holdings", "holdings"),
    ("Logistics", "logistics"),
    ("Foods", "foods"),
    ("Partners", "partners"),
)
FOREIGN_TZ = ("America/Los_Angeles", "America/New_York", "Europe/London", "Asia/Singapore")
DEPARTMENTS = (
    "営業部",
    "総務部",
    "情報システム部",
    "経営企画部",
    "購買部",
    "製造部",
    "人事部",
    "マーケティング部",
    "経理部",
)
TITLES = ("部長", "課長", "係長", "主任", "担当", "代表取締役", "取締役", "マネージャー", "")
EN_TITLES = ("CEO", "Director", "Sales Manager", "Procurement Manager", "IT Manager", "")
FREE_MAIL = ("gmail.com", "yahoo.co.jp", "icloud.com", "outlook.jp")
PRODUCTS = (
    "クラウド会計",
    "勤怠管理システム",
    "基幹システム",
    "セキュリティ診断",
    "名刺管理",
    "EDI連携",
)


@dataclass(frozen=True)
class Staff:
    family: str
    given: str
    family_kana: str
    given_kana: str
    romaji: str
    email: str
    title: str

    @property
    def name(self) -> str:
        return f"{self.family} {self.given}"


@dataclass(frozen=True)
class Company:
    name: str
    variants: tuple[str, ...]
    """Other spellings the same company is written with (㈱, half-width, …)."""
    domain: str
    industry: str
    english: bool
    tz: str
    owner: Staff


@dataclass(frozen=True)
class Contact:
    cid: str
    company: Company
    family: str
    given: str
    family_kana: str
    given_kana: str
    email: str
    personal_email: str | None
    personal_in_export: bool
    phone: str
    department: str
    title: str
    birth_date: date | None
    charset: str
    """The charset this person's mail program writes: iso-2022-jp, shift_jis or utf-8."""

    @property
    def name(self) -> str:
        if self.company.english:
            return f"{self.given} {self.family}"
        return f"{self.family} {self.given}"


@dataclass(frozen=True)
class Deal:
    did: str
    name: str
    company: Company
    contact: Contact
    stage: str
    amount: int
    probability: int
    close: date
    owner: Staff


@dataclass
class World:
    seed: int
    today: date
    staff: list[Staff]
    companies: list[Company]
    contacts: list[Contact]
    deals: list[Deal]
    rng: random.Random
    ja: Faker
    en: Faker
    by_company: dict[str, list[Contact]] = field(default_factory=dict)


def _cp932_ok(*texts: str) -> bool:
    try:
        for t in texts:
            t.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


def _ja_name(ja: Faker) -> tuple[str, str, str, str, str, str]:
    while True:
        fam, fam_kana, fam_romaji = ja.last_name_pair()
        giv, giv_kana, giv_romaji = ja.first_name_pair()
        if _cp932_ok(fam, giv, fam_kana, giv_kana):
            return fam, giv, fam_kana, giv_kana, fam_romaji.lower(), giv_romaji.lower()


_HALF: dict[str, str] = {}
for _c in range(0xFF61, 0xFFA0):
    _HALF.setdefault(unicodedata.normalize("NFKC", chr(_c)), chr(_c))


def half_width(text: str) -> str:
    """Katakana and ASCII to the half-width forms old systems export (ｻﾝﾗｲｽﾞ, ABC)."""
    out: list[str] = []
    for ch in text:
        if "Ａ" <= ch <= "ｚ" or "０" <= ch <= "９":
            out.append(chr(ord(ch) - 0xFEE0))
            continue
        parts = unicodedata.normalize("NFD", ch)
        base = _HALF.get(parts[0])
        if base is None:
            out.append(ch)
            continue
        out.append(base)
        for mark in parts[1:]:
            out.append({"\u3099": "ﾞ", "\u309a": "ﾟ"}.get(mark, mark))
    return "".join(out)


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _variants(name: str) -> tuple[str, ...]:
    out: list[str] = []
    if name.startswith("株式会社"):
        rest = name.removeprefix("株式会社")
        out += [f"(株){rest}", f"㈱{rest}", f"（株）{rest}"]
    elif name.endswith("株式会社"):
        rest = name.removesuffix("株式会社")
        out += [f"{rest}(株)", f"{rest}㈱"]
    elif name.startswith("有限会社"):
        out += [f"(有){name.removeprefix('有限会社')}", f"㈲{name.removeprefix('有限会社')}"]
    if any("Ａ" <= c <= "Ｚ" for c in name) or any("ァ" <= c <= "ヶ" for c in name):
        out.append(half_width(name))
    if name.endswith(", Ltd."):
        out.append(name.replace("Co., Ltd.", "Co.,Ltd."))
    return tuple(dict.fromkeys(v for v in out if v != name))


def _company(
    world_rng: random.Random, ja: Faker, en: Faker, owner: Staff, used: set[str]
) -> Company:
    r = world_rng
    roll = r.random()
    if roll < 0.14:
        last = en.last_name()
        word, word_romaji = r.choice(EN_WORDS)
        form = r.choice(("Co., Ltd.", "Inc.", "LLC", "Ltd."))
        name = f"{last} {word} {form}"
        base = f"{last.lower()}-{word_romaji}"
        tld = r.choice((".com", ".com", ".co.uk", ".io"))
        industry = r.choice(INDUSTRIES)[0]
        english, tz = True, r.choice(FOREIGN_TZ)
    else:
        industry, word, word_romaji = r.choice(INDUSTRIES)
        tld = r.choice((".co.jp", ".co.jp", ".co.jp", ".jp", ".com"))
        english, tz = False, "Asia/Tokyo"
        if roll < 0.26:
            brand, brand_romaji = r.choice(BRANDS)
            core, base = f"{brand}{word}", f"{brand_romaji}-{word_romaji}"
        elif roll < 0.32:
            letters = r.choice(LETTERS)
            core, base = f"{full_width(letters)}{word}", f"{letters.lower()}-{word_romaji}"
        else:
            while True:
                fam, _, fam_romaji = ja.last_name_pair()
                if _cp932_ok(fam):
                    break
            core, base = f"{fam}{word}", f"{fam_romaji.lower()}-{word_romaji}"
        form_roll = r.random()
        if form_roll < 0.6:
            name = f"株式会社{core}"
        elif form_roll < 0.88:
            name = f"{core}株式会社"
        elif form_roll < 0.96:
            name = f"有限会社{core}"
        else:
            name = f"合同会社{core}"
    if base in used:  # one name per company: a second 山田商事 would merge with the first
        return _company(world_rng, ja, en, owner, used)
    used.add(base)
    domain = f"{base}{tld}"
    n = 2
    while domain in used:
        domain = f"{base}{n}{tld}"
        n += 1
    used.add(domain)
    return Company(name, _variants(name), domain, industry, english, tz, owner)


def _phone(r: random.Random) -> str:
    kind = r.random()
    if kind < 0.45:
        area = r.choice(("03", "06", "052", "011", "092", "045"))
        rest = 10 - len(area)
        mid = 4 if rest == 8 else 3
        digits = f"{r.randrange(10**rest):0{rest}d}"
        num = f"{area}-{digits[:mid]}-{digits[mid:]}"
    elif kind < 0.85:
        num = f"{r.choice(('090', '080', '070'))}-{r.randrange(10**4):04d}-{r.randrange(10**4):04d}"
    elif kind < 0.93:
        num = full_width(f"03-{r.randrange(10**4):04d}-{r.randrange(10**4):04d}")
    else:
        num = f"+81 3-{r.randrange(10**4):04d}-{r.randrange(10**4):04d}"
    return num


def build_world(seed: int, today: date, *, companies: int = 300, contacts: int = 1500) -> World:
    rng = random.Random(seed)
    ja = Faker("ja_JP")
    ja.seed_instance(seed)
    en = Faker("en_US")
    en.seed_instance(seed + 1)

    staff: list[Staff] = []
    seen_staff: set[str] = set()
    while len(staff) < 10:
        fam, giv, fk, gk, fr, gr = _ja_name(ja)
        email = f"{gr}.{fr}@{OWN_DOMAIN}"
        if email in seen_staff:
            continue
        seen_staff.add(email)
        title = (
            "営業部長"
            if not staff
            else rng.choice(("営業", "営業", "営業主任", "インサイドセールス"))
        )
        staff.append(Staff(fam, giv, fk, gk, f"{gr}.{fr}", email, title))
    reps = staff[1:]

    used_domains: set[str] = set()
    comps = [_company(rng, ja, en, rng.choice(reps), used_domains) for _ in range(companies)]

    people: list[Contact] = []
    by_company: dict[str, list[Contact]] = {}
    weights = [rng.uniform(0.3, 2.0) for _ in comps]
    counts = [1] * len(comps)
    for i in rng.choices(range(len(comps)), weights=weights, k=max(contacts - len(comps), 0)):
        counts[i] += 1
    n = 0
    for comp, count in zip(comps, counts, strict=True):
        used_local: set[str] = set()
        for _ in range(count):
            n += 1
            if comp.english:
                fam, giv = en.last_name(), en.first_name()
                fk = gk = ""
                fr, gr = fam.lower(), giv.lower()
                charset = "utf-8"
                phone = rng.choice(("+1 415-555-01", "+1 212-555-01", "+44 20 7946 00"))
                phone += f"{rng.randrange(100):02d}"
            else:
                fam, giv, fk, gk, fr, gr = _ja_name(ja)
                charset = rng.choices(("iso-2022-jp", "shift_jis", "utf-8"), (40, 15, 45))[0]
                phone = _phone(rng)
            for local in (f"{gr}.{fr}", f"{fr}", f"{gr[0]}.{fr}", f"{fr}-{gr}", f"{gr}.{fr}{n}"):
                if local not in used_local:
                    break
            used_local.add(local)
            personal = None
            if rng.random() < 0.08:
                personal = f"{gr}.{fr}{rng.randrange(10, 99)}@{rng.choice(FREE_MAIL)}"
            birth = None
            if rng.random() < 0.15:
                birth = date(rng.randrange(1960, 2000), rng.randrange(1, 13), rng.randrange(1, 29))
            c = Contact(
                cid=f"C{n:05d}",
                company=comp,
                family=fam,
                given=giv,
                family_kana=fk,
                given_kana=gk,
                email=f"{local}@{comp.domain}",
                personal_email=personal,
                personal_in_export=personal is not None and rng.random() < 0.5,
                phone=phone,
                department=rng.choice(DEPARTMENTS) if not comp.english else "",
                title=rng.choice(EN_TITLES if comp.english else TITLES),
                birth_date=birth,
                charset=charset,
            )
            people.append(c)
            by_company.setdefault(comp.domain, []).append(c)

    deals: list[Deal] = []
    for i in range(1, 401):
        comp = rng.choice(comps)
        contact = rng.choice(by_company[comp.domain])
        stage = rng.choices(STAGES, STAGE_WEIGHTS)[0]
        product = rng.choice(PRODUCTS)
        kind = rng.choice(("導入", "更新", "追加ライセンス", "リプレース", "PoC"))
        short = comp.name.replace("株式会社", "").replace("有限会社", "").replace("合同会社", "")
        amount = rng.randrange(3, 600) * 100_000
        offset = (
            rng.randrange(-120, 150) if stage not in ("受注", "失注") else rng.randrange(-150, 0)
        )
        deals.append(
            Deal(
                did=f"D-{i:04d}",
                name=f"{short} {product}{kind}",
                company=comp,
                contact=contact,
                stage=stage,
                amount=amount,
                probability=STAGE_PROBABILITY[stage],
                close=today + timedelta(days=offset),
                owner=comp.owner,
            )
        )
    return World(seed, today, staff, comps, people, deals, rng, ja, en, by_company)
