"""Company names compared the way Japanese sales data writes them.

The same company arrives as 株式会社ネクストテック 名古屋営業所, ㈱ﾈｸｽﾄﾃｯｸ and
``Next Tech Co., Ltd.``: the 法人格 and the branch (本社, 大阪支店, 名古屋営業所, "Osaka Branch")
say nothing about which company it is, and katakana and English spell one name in two
scripts. ``sound_key`` brings both scripts to a consonant skeleton (ネクストテック → nekusutotekku
→ ``nkstk``; Next Tech → ``nkstk``) that is compared only across scripts. Twins (one trade
name, two companies) are told apart by what a name cannot carry: 法人番号, legal form, domain.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.resources import files

from warehouse.identity.keys.normalize import fold

_BRANCH_WORDS = (
    "本社|本店|支店|支社|営業所|出張所|事業所|工場|研究所|センター|事業部|営業部|分室|オフィス"
)
# A branch is the last segment after a space ("ABC商事 名古屋営業所"), or a branch word at
# the end with an optional place name before it ("ABC商事大阪支店"), never the whole name.
_BRANCH_ENDS = tuple(_BRANCH_WORDS.split("|"))
_BRANCH_SPACED = re.compile(rf"[\s\u3000]+[^\s\u3000]{{0,12}}(?:{_BRANCH_WORDS})$")
_BRANCH_EN = re.compile(
    r"[\s,]+(?:[a-z]+\s+)?(?:branch|office|head\s+office|headquarters|hq|sales\s+office|"
    r"factory|plant|laboratory|center|centre)\.?$"
)
LEGAL_FORMS = {
    "株式会社": "kk",
    "(株)": "kk",
    "㈱": "kk",
    "有限会社": "yk",
    "(有)": "yk",
    "㈲": "yk",
    "合同会社": "gk",
    "(同)": "gk",
    "合資会社": "gs",
    "(資)": "gs",
    "合名会社": "gm",
    "(名)": "gm",
    "一般社団法人": "sha",
    "(一社)": "sha",
    "㈳": "sha",
    "(社)": "sha",
    "一般財団法人": "zai",
    "(一財)": "zai",
    "㈶": "zai",
    "(財)": "zai",
    "医療法人": "med",
    "(医)": "med",
    "学校法人": "edu",
    "(学)": "edu",
    "社会福祉法人": "wel",
    "(福)": "wel",
    "特定非営利活動法人": "npo",
    "npo法人": "npo",
}
_EN_FORMS = [
    (re.compile(r"\b(co\.?,?\s*ltd\.?|kabushiki\s+kaisha|k\.?\s?k\.?)\s*$"), "kk"),
    (re.compile(r"\b(g\.?\s?k\.?|llc|godo\s+kaisha)\s*$"), "gk"),
    (re.compile(r"\b(y\.?\s?k\.?|yugen\s+kaisha)\s*$"), "yk"),
]


@lru_cache(maxsize=262144)
def strip_branch(name: str) -> str:
    """The company without its office: 'ABC商事 名古屋営業所' → 'ABC商事'."""
    n = fold(name)
    if _ends_in_branch(n):
        n = _cut(n, _BRANCH_SPACED)
    n = _cut(n, _BRANCH_EN)
    if _ends_in_branch(n):
        # The match ends at the end: only the last few characters can hold it, so the
        # place-name alternation is tried there, not at every position of a long name.
        n = _cut(n, _branch_tail(), max(0, len(n) - _tail_width()))
    return n.strip()


def _ends_in_branch(n: str) -> bool:
    # ``$`` also matches before a final newline.
    return n.removesuffix("\n").endswith(_BRANCH_ENDS)


def _cut(n: str, pat: re.Pattern[str], pos: int = 0) -> str:
    m = pat.search(n, pos)
    return n[: m.start()] if m and m.start() >= 2 else n


@lru_cache(maxsize=1)
def _branch_tail() -> re.Pattern[str]:
    """Branch words, optionally after a prefecture or city name (``keys/places_ja.txt``)."""
    section: dict[str, list[str]] = {}
    text = files("warehouse.identity.keys").joinpath("places_ja.txt").read_text("utf-8")
    for line in text.splitlines():
        if line.startswith("["):
            names = section.setdefault(line.strip("[]"), [])
        elif line and not line.startswith("#"):
            names.append(line)
    places = {p.rstrip("都道府県") for p in section["prefectures"]}
    places |= {c.removesuffix("市").removesuffix("区") for c in section["cities"]}
    places |= {"東京", "大阪", "名古屋", "横浜", "札幌", "仙台", "広島", "福岡", "神戸", "京都"}
    alt = "|".join(sorted((re.escape(p) for p in places if p), key=len, reverse=True))
    return re.compile(rf"(?:{alt})?(?:{_BRANCH_WORDS})$")


@lru_cache(maxsize=1)
def _tail_width() -> int:
    """The longest text ``_branch_tail`` can match (a place name and a branch word, and a
    final newline), so a search from there on finds what a search from the start finds."""
    words = max(len(w) for w in _BRANCH_ENDS)
    alt = _branch_tail().pattern.split(")?(?:")[0].removeprefix("(?:")
    places = max(len(re.sub(r"\\(.)", r"\1", p)) for p in alt.split("|"))
    return places + words + 1


@lru_cache(maxsize=262144)
def legal_form(name: str) -> str:
    """The 法人格 as a short code ('kk', 'yk', 'gk', …) or '' when the name shows none."""
    n = fold(name)
    for form, code in LEGAL_FORMS.items():
        if form in n:
            return code
    for pat, code in _EN_FORMS:
        if pat.search(n):
            return code
    return ""


# Latin spellings of katakana sounds, folded toward the consonants both scripts keep.
_LATIN_FOLD = [
    ("ty", "k"),  # 'ch' after the romaji fold (tech → tety)
    ("tch", "k"),
    ("ck", "k"),
    ("ch", "k"),
    ("sh", "s"),
    ("th", "s"),
    ("ph", "f"),
    ("x", "ks"),
    ("q", "k"),
    ("c", "k"),
    ("l", "r"),
    ("v", "b"),
    ("w", ""),
    ("y", ""),
    ("h", ""),
    ("j", "z"),
    ("ts", "t"),
]
_VOWELS = re.compile(r"[aeiou]+")
_SILENT_R = re.compile(r"(?<=[aeiou])r(?![aeiouy])")
_SOFT_C = re.compile(r"c(?=[eiy])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=262144)
def sound_key(romaji_or_latin: str) -> str:
    """A consonant skeleton shared by a katakana name's romaji and its English spelling."""
    s = _NON_ALNUM.sub("", romaji_or_latin.lower())
    # English sounds katakana writes otherwise: an r after a vowel and before a consonant
    # or the end is long-vowel only (Frontier フロンティア), a soft c is s (Ocean オーシャン),
    # f is the h-row (フ is 'hu' in the romaji fold), s between vowels is voiced (Sunrise
    # サンライズ). Romaji never has r before a consonant, nor a c.
    s = _SILENT_R.sub("", s)
    s = _SOFT_C.sub("s", s).replace("f", "h").replace("z", "s")
    for a, b in _LATIN_FOLD:
        s = s.replace(a, b)
    s = _VOWELS.sub("", s)
    out: list[str] = []
    for ch in s:
        if not out or out[-1] != ch:
            out.append(ch)
    return "".join(out)


def corporate_number_ok(number: str) -> bool:
    """The 法人番号 check digit: ``9 − (Σ P_n × Q_n mod 9)`` over the 12-digit base."""
    if len(number) != 13 or not number.isdigit():
        return False
    base = number[1:]
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(base), start=1))
    return int(number[0]) == 9 - total % 9
